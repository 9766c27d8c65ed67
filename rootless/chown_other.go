//go:build !amd64

package rootless

// pathChown: architectures such as arm64 have fchownat(2) alone.
func pathChown(int32) (ok, nofollow bool) { return false, false }
