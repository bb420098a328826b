package submit

import (
	"fmt"
	"io"

	"github.com/relayq/relayq/internal/sysexits"
)

// TooBigError is a message refused for its size on the direct and drop
// routes, as the daemon's socket refuses it (552 5.3.4): one limit,
// RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT, holds on every door. Nothing of the
// message is stored; sendmail exits 65 (EX_DATAERR).
type TooBigError struct {
	Limit int64
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("message exceeds the size limit of %d octets (RELAYQ_SMTPD_MESSAGE_SIZE_LIMIT); nothing was queued", e.Limit)
}

// ExitCode is EX_DATAERR: the message itself is the problem.
func (e *TooBigError) ExitCode() int { return sysexits.DataErr }

// limitReader fails with a *TooBigError once more than limit octets have
// been read, so that the spool or the drop file, which commit only after
// reading the body to its end without error, store nothing.
type limitReader struct {
	r     io.Reader
	limit int64
	n     int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, &TooBigError{Limit: l.limit}
	}
	return n, err
}

// limitBody applies o.MaxSize (0: no limit) to body.
func limitBody(o Options, body io.Reader) io.Reader {
	if o.MaxSize <= 0 {
		return body
	}
	return &limitReader{r: body, limit: o.MaxSize}
}
