package container

import "fmt"

// Usage is one row of `system df`: how many objects of a kind there are,
// how many are in use, their bytes and the bytes pruning would free.
type Usage struct {
	Type        string
	Total       int
	Active      int
	Size        int64
	Reclaimable int64
}

// DiskUsage is what `system df` shows: images, containers, volumes and a
// build's cached steps, as Docker counts them (an image's size is its
// unpacked layers', shared ones counted in each image, as `images` shows
// them; a container's its writable layer's). Call it inside the user
// namespace, where the files of containers' ids can be read.
func (m *Manager) DiskUsage() ([]Usage, error) {
	imgs, err := m.store.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	cs, err := m.List()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	used := map[string]bool{}
	ctrs := Usage{Type: "Containers"}
	for _, c := range cs {
		used[c.ImageID] = true
		rw, _ := m.Size(c)
		ctrs.Total++
		ctrs.Size += rw
		if c.Running() {
			ctrs.Active++
		} else {
			ctrs.Reclaimable += rw
		}
	}
	images, cache := Usage{Type: "Images"}, Usage{Type: "Build Cache"}
	for _, img := range imgs {
		u := &images
		if img.BuildCache && len(img.Names) == 0 {
			u = &cache
		}
		u.Total++
		u.Size += img.Size
		if used[img.ID.String()] {
			u.Active++
		} else {
			u.Reclaimable += img.Size
		}
	}
	vols, err := m.ListVolumes()
	if err != nil {
		return nil, err
	}
	users, err := m.VolumeUsers()
	if err != nil {
		return nil, err
	}
	volumes := Usage{Type: "Local Volumes"}
	for _, v := range vols {
		size := VolumeSize(v)
		volumes.Total++
		volumes.Size += size
		if len(users[v.Name]) > 0 {
			volumes.Active++
		} else {
			volumes.Reclaimable += size
		}
	}
	return []Usage{images, ctrs, volumes, cache}, nil
}
