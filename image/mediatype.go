package image

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// layerMediaTypeKnown reports whether a manifest's layer media type is a
// filesystem layer nook unpacks: OCI's, Docker schema 2's, and their
// non-distributable ("foreign") forms, each as a tar, gzip or zstd. Any
// other type (an artifact, an encrypted layer, a typo) is refused rather
// than unpacked as a tar and kept in the stored manifest for tools that
// would read it differently.
func layerMediaTypeKnown(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		"application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
		return true
	//lint:ignore SA1019 deprecated for producers; archives still carry them
	case ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributableZstd:
		return true
	}
	return false
}
