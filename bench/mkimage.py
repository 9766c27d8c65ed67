"""mkimage.py OUT LAYERS LAYER_MB [plain]: the registry benchmarks' image.

Writes an OCI image layout at OUT named "bench": LAYERS layers of LAYER_MB MB
each, half random (incompressible) and half text (compressible) in files of
64 KiB..4 MiB. Layers are gzip'd, or with "plain" left as tars (the form
nook's import and commit store, which a push compresses). File sizes and
text come from a fixed seed; the random halves differ on every run.
"""
import gzip, hashlib, io, json, os, random, sys, tarfile
out, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
plain = len(sys.argv) > 4 and sys.argv[4] == "plain"
os.makedirs(out + "/blobs/sha256")
rng = random.Random(1)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d
layers, diffs = [], []
for i in range(n):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        left, j = mb << 20, 0
        while left > 0:
            size = min(left, rng.randint(64 << 10, 4 << 20))
            if j % 2:
                data = os.urandom(size)
            else:
                data = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
            ti = tarfile.TarInfo(f"layer{i}/f{j}"); ti.size = len(data); ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
            left -= size; j += 1
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    if plain:
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(raw), "size": len(raw)})
        continue
    gz = gzip.compress(raw, 6, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
idx = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(man),
        "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
json.dump(idx, open(out + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
