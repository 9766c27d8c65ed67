package image

import (
	"time"
)

// HistoryEntry is one step of an image's history, as `docker history`
// lists it.
type HistoryEntry struct {
	// ID is the image's id on the newest step; the steps below it have
	// no image of their own here ("<missing>" in Docker's listing).
	ID         string
	Created    time.Time
	CreatedBy  string
	Comment    string
	Size       int64 // the unpacked size of the step's layer; 0 for a step that made none
	EmptyLayer bool
}

// History lists img's steps, newest first. An image whose config has no
// history gets a step per layer, as nothing else describes them.
func (s *Store) History(img Image) []HistoryEntry {
	diffIDs := img.Config.RootFS.DiffIDs
	layer := 0
	// size is the next layer's, in the order the steps made them.
	size := func() int64 {
		if layer >= len(img.Manifest.Layers) {
			return 0
		}
		n := s.layerSize(diffIDs, layer, img.Manifest.Layers[layer])
		layer++
		return n
	}
	var out []HistoryEntry
	for _, h := range img.Config.History {
		e := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer {
			e.Size = size()
		}
		out = append(out, e)
	}
	for layer < len(img.Manifest.Layers) {
		out = append(out, HistoryEntry{Created: img.Created(), Size: size()})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
	}
	return out
}
