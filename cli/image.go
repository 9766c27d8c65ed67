package cli

// ImageCmd groups the image verbs as `docker image` does.
type ImageCmd struct {
	Ls      ImagesCmd       `cmd:"" aliases:"list" help:"List images."`
	Rm      RmiCmd          `cmd:"" aliases:"remove" help:"Remove images."`
	Tag     TagCmd          `cmd:"" help:"Give an image another name."`
	Inspect ImageInspectCmd `cmd:"" help:"Show low-level information on images as JSON."`
	Import  ImportCmd       `cmd:"" help:"Create an image from a root filesystem tar."`
	Prune   ImagePruneCmd   `cmd:"" help:"Remove dangling images."`
	Save    SaveCmd         `cmd:"" help:"Write images to a tar archive (Docker and OCI layout)."`
	Load    LoadCmd         `cmd:"" help:"Load images from a tar archive or an OCI layout directory."`
	History HistoryCmd      `cmd:"" help:"Show the steps that made an image."`
	Build   BuildCmd        `cmd:"" help:"Build an image from a Dockerfile."`
}
