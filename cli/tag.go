package cli

// TagCmd is `nook tag`.
type TagCmd struct {
	Source string `arg:"" help:"Image to tag: name, id or digest."`
	Target string `arg:"" help:"New name, REPOSITORY[:TAG]."`
}

// Run adds the name.
func (c *TagCmd) Run(g *Globals) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	return s.Tag(c.Source, c.Target)
}
