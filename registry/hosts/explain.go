package hosts

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
)

// Sentinels for what Explain recognises.
var (
	// ErrUntrusted: the registry's certificate is signed by a CA that
	// neither the system nor certs.d holds.
	ErrUntrusted = errors.New("certificate signed by unknown authority")
	// ErrUnreachable: connection refused, or no such host.
	ErrUnreachable = errors.New("cannot reach registry")
)

// explained is a transport error said in one line, still matching its
// sentinel and the error underneath.
type explained struct {
	msg      string
	sentinel error
	err      error
}

func (e *explained) Error() string   { return e.msg }
func (e *explained) Unwrap() []error { return []error{e.sentinel, e.err} }

// Explain turns an error from reaching a registry into one line a user
// can act on: an unknown certificate authority names the certs.d path
// where the CA goes, a refused connection or unknown host names the host.
// Any other error is returned as it is.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var done *explained
	if errors.As(err, &done) {
		return done
	}
	host := ""
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if u, perr := url.Parse(uerr.URL); perr == nil {
			host = u.Host
		}
	}
	var unknown x509.UnknownAuthorityError
	var dns *net.DNSError
	switch {
	case errors.As(err, &unknown) && host != "":
		return &explained{
			msg: fmt.Sprintf("%s: %v: put the registry's CA certificate in %s, or use --tls-verify=false",
				host, ErrUntrusted, UserCertsDir(host)+"/ca.crt"),
			sentinel: ErrUntrusted, err: err,
		}
	case errors.Is(err, syscall.ECONNREFUSED) && host != "":
		return &explained{msg: fmt.Sprintf("cannot reach %s: connection refused", host), sentinel: ErrUnreachable, err: err}
	case errors.As(err, &dns) && dns.IsNotFound:
		if host == "" {
			host = dns.Name
		}
		return &explained{msg: fmt.Sprintf("cannot reach %s: no such host", host), sentinel: ErrUnreachable, err: err}
	}
	return err
}
