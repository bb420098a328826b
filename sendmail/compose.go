package sendmail

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/relayq/relayq/submit"
)

// The header relayq queues for a message from the sendmail command.

// writeHeader writes the header relayq queues: its Received line, the
// authentication warning, the caller's fields (dropped ones left out,
// addresses rewritten and qualified), the fields it lacks, the empty line,
// and the start of the body that readHeader read.
func (in *intake) writeHeader(hb *bytes.Buffer, req *request, h *headerResult, facts headerFacts, sender, authWarning string) {
	now := in.o.now()
	writeFolded(hb, []byte(fmt.Sprintf("Received: by %s (relayq, from userid %d); %s", in.host(), in.o.Identity.UID, now.Format(dateLayout))))
	if authWarning != "" {
		writeFolded(hb, []byte(authWarning))
	}
	originalFrom, fromRewritten := in.writeFields(hb, h)
	if fromRewritten && !facts.present["reply-to"] {
		writeFolded(hb, []byte("Reply-To: "+originalFrom))
	}
	in.completeHeader(hb, req, facts, sender, now)
	hb.WriteString("\r\n")
	if h.firstBody != nil {
		hb.Write(h.firstBody) // queued whole, as every body line
		hb.WriteString("\r\n")
	}
}

// writeFields writes the caller's fields but the dropped ones, with the
// sender rewritten in From and addresses qualified. When From was
// rewritten it returns the original (qualified) value.
func (in *intake) writeFields(hb *bytes.Buffer, h *headerResult) (originalFrom string, fromRewritten bool) {
	for i := range h.fields {
		f := &h.fields[i]
		if droppedHeaders[f.key] {
			continue
		}
		if !addressHeaders[f.key] {
			writeField(hb, f)
			continue
		}
		val := f.value()
		nv, changed := val, false
		if f.key == "from" {
			// Sender rewriting sees the addresses as written (a generic
			// entry may name root@<host>), then the rest is qualified.
			if rv, ch := in.rewriteFromValue(val); ch {
				fromRewritten = true
				originalFrom, _ = in.qualifyHeader(val)
				nv, changed = rv, true
			}
		}
		if qv, ch := in.qualifyHeader(nv); ch {
			nv, changed = qv, true
		}
		if !changed {
			writeField(hb, f)
			continue
		}
		nf := newField(f.name, nv)
		writeField(hb, &nf)
	}
	return originalFrom, fromRewritten
}

// completeHeader adds the fields the caller's header lacks: From, Date,
// Message-ID (and their Resent- forms for a resent message), and, when no
// To or Cc names anyone, "To: undisclosed-recipients:;" (Postfix
// undisclosed_recipients_header).
func (in *intake) completeHeader(hb *bytes.Buffer, req *request, facts headerFacts, sender string, now time.Time) {
	present := facts.present
	if !present["from"] {
		writeFolded(hb, []byte("From: "+in.fromValue(req, sender)))
	}
	if !present["date"] {
		writeFolded(hb, []byte("Date: "+now.Format(dateLayout)))
	}
	if !present["message-id"] {
		writeFolded(hb, []byte("Message-ID: "+in.messageID(now)))
	}
	if facts.resent {
		if !present["resent-from"] {
			writeFolded(hb, []byte("Resent-From: "+in.fromValue(req, sender)))
		}
		if !present["resent-date"] {
			writeFolded(hb, []byte("Resent-Date: "+now.Format(dateLayout)))
		}
		if !present["resent-message-id"] {
			writeFolded(hb, []byte("Resent-Message-ID: "+in.messageID(now)))
		}
	}
	if !present["to"] && !present["cc"] && !facts.resent {
		hb.WriteString("To: undisclosed-recipients:;\r\n")
	}
}

// envelope is the submission envelope: 8-bit when declared or seen in the
// header and body start, SMTPUTF8 when declared or when an address needs
// it.
func (in *intake) envelope(req *request, h *headerResult, sender string, rcpts []submit.Recipient, header []byte) submit.Envelope {
	headerUTF := false
	for i := range h.fields {
		if f := &h.fields[i]; addressHeaders[f.key] && headerUTF8([]byte(f.value())) {
			headerUTF = true
		}
	}
	env := submit.Envelope{
		From:       sender,
		Recipients: rcpts,
		Ret:        req.ret,
		EnvID:      req.envID,
		Body8Bit:   req.bodyType == "8BITMIME" || hasHigh(header),
		SMTPUTF8:   req.smtputf8 || nonASCII(sender) || headerUTF,
		Origin:     "uid=" + strconv.Itoa(in.o.Identity.UID),
	}
	for _, r := range rcpts {
		if nonASCII(r.Addr) {
			env.SMTPUTF8 = true
		}
	}
	return env
}
