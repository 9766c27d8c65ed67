package cli

import (
	"fmt"
	"path"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"nook/image"
)

// ImagesCmd is `nook images` (and `nook image ls`).
type ImagesCmd struct {
	Repository string   `arg:"" optional:"" help:"Only images of this repository (REPOSITORY[:TAG])."`
	All        bool     `short:"a" help:"Show all images, also the intermediate ones builds keep as their cache."`
	Quiet      bool     `short:"q" help:"Only image ids."`
	Digests    bool     `help:"Show digests."`
	NoTrunc    bool     `help:"Do not truncate ids."`
	Format     string   `help:"Output: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'."`
	Filter     []string `short:"f" sep:"none" help:"Filter: dangling=true|false, reference=PATTERN."`
}

// imageRow is one line of `images`, with Docker's field names for --format.
type imageRow struct {
	Containers   string `header:"CONTAINERS"`
	CreatedAt    string `header:"CREATED AT"`
	CreatedSince string `header:"CREATED"`
	Digest       string `header:"DIGEST"`
	ID           string `header:"IMAGE ID"`
	Repository   string `header:"REPOSITORY"`
	SharedSize   string `header:"SHARED SIZE"`
	Size         string `header:"SIZE"`
	Tag          string `header:"TAG"`
	UniqueSize   string `header:"UNIQUE SIZE"`
	VirtualSize  string `header:"VIRTUAL SIZE"`
}

// Run lists.
func (c *ImagesCmd) Run(g *Globals) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	imgs, err := s.Images()
	if err != nil {
		return err
	}
	rows, err := c.rows(imgs)
	if err != nil {
		return err
	}
	l := listing[imageRow]{
		header: "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE",
		cells:  func(r imageRow) []string { return []string{r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size} },
		id:     func(r imageRow) string { return r.ID },
	}
	if c.Digests {
		l.header = "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE"
		l.cells = func(r imageRow) []string {
			return []string{r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size}
		}
	}
	return l.print(g, c.Format, c.Quiet, rows)
}

func (c *ImagesCmd) rows(imgs []image.Image) ([]imageRow, error) {
	match, err := c.matcher()
	if err != nil {
		return nil, err
	}
	var rows []imageRow
	for _, img := range imgs {
		if img.BuildCache && len(img.Names) == 0 && !c.All {
			continue // intermediate, as Docker hides them
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			r := newImageRow(img, n, c.NoTrunc)
			if match(img, r) {
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

func newImageRow(img image.Image, name string, noTrunc bool) imageRow {
	repo, tag := "<none>", "<none>"
	if name != "" {
		repo, tag = image.FamiliarRepoTag(name)
	}
	if tag == "" { // pulled by digest
		tag = "<none>"
	}
	dgst := img.Digest
	if d, ok := img.RepoDigests[name]; ok {
		dgst = d
	}
	id := img.ShortID()
	if noTrunc {
		id = img.ID.String()
	}
	createdAt, createdSince := "N/A", "N/A" // an image config without "created"
	if created := img.Created(); !created.IsZero() {
		createdAt = created.Format("2006-01-02 15:04:05 -0700 MST")
		createdSince = units.HumanDuration(time.Since(created)) + " ago"
	}
	size := humanSize(img.Size)
	return imageRow{
		Containers: "N/A", CreatedAt: createdAt,
		CreatedSince: createdSince, Digest: dgst.String(),
		ID: id, Repository: repo, SharedSize: "N/A", Size: size, Tag: tag, UniqueSize: "N/A", VirtualSize: size,
	}
}

// matcher builds the filter of the repository argument and --filter flags.
func (c *ImagesCmd) matcher() (func(image.Image, imageRow) bool, error) {
	var preds []func(image.Image, imageRow) bool
	if c.Repository != "" {
		repo, tag, _ := strings.Cut(c.Repository, ":")
		preds = append(preds, func(_ image.Image, r imageRow) bool {
			return r.Repository == repo && (tag == "" || r.Tag == tag)
		})
	}
	for _, f := range c.Filter {
		key, val, _ := strings.Cut(f, "=")
		switch key {
		case "dangling":
			want := val == "true" || val == "1"
			preds = append(preds, func(img image.Image, _ imageRow) bool { return (len(img.Names) == 0) == want })
		case "reference":
			if _, err := path.Match(val, ""); err != nil {
				return nil, fmt.Errorf("bad reference filter %q: %w", val, err)
			}
			preds = append(preds, func(_ image.Image, r imageRow) bool {
				ok1, _ := path.Match(val, r.Repository)
				ok2, _ := path.Match(val, r.Repository+":"+r.Tag)
				return ok1 || ok2
			})
		default:
			return nil, fmt.Errorf("invalid filter %q (dangling and reference are supported)", f)
		}
	}
	return func(img image.Image, r imageRow) bool {
		for _, p := range preds {
			if !p(img, r) {
				return false
			}
		}
		return true
	}, nil
}
