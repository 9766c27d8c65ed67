package registry

// Event is one step of one blob's transfer, for progress output; the CLI
// renders it as Docker does (a line per layer on a terminal, a line per
// event elsewhere). Options carry a func(Event), called from several
// goroutines at once; nil reports nothing.
type Event struct {
	ID      string // the blob's digest, short (12 hex digits) as Docker shows it
	Status  string // one of the Status constants
	Current int64  // bytes done, for Downloading, Extracting and Pushing
	Total   int64  // the blob's size, when known
	Detail  string // e.g. the repository a blob was mounted from
}

// Statuses, in Docker's words.
const (
	StatusPullingFS    = "Pulling fs layer"
	StatusWaiting      = "Waiting"
	StatusDownloading  = "Downloading"
	StatusVerifying    = "Verifying Checksum"
	StatusExtracting   = "Extracting"
	StatusPullComplete = "Pull complete"
	StatusExists       = "Already exists"
	StatusPreparing    = "Preparing"
	StatusPushing      = "Pushing"
	StatusPushed       = "Pushed"
	StatusLayerExists  = "Layer already exists"
	StatusMounted      = "Mounted from"
)
