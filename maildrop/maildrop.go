// Package maildrop is relayq's drop directory (Postfix's maildrop and
// postdrop): daemonless submission writes each message as one file and
// never opens the bbolt spool, so a caller never waits on a delivery run's
// lock. The delivery run, or the daemon, imports the files into the spool.
//
// The package is a leaf (standard library only) so that the small sendmail
// binary can link it without TLS, SASL or bbolt.
//
// # File format
//
//	relayq-drop/1\n
//	<the envelope as one line of JSON>\n
//	<the body, exactly as it goes after DATA: CRLF, not dot-stuffed>
//	\nrelayq-drop-end <body size, 16 hex digits> <CRC-32C of the body, 8 hex digits>\n
//
// The trailer makes a file that was cut short (a crash before the data
// reached the disk, a bad copy) recognisable: Open refuses it with
// ErrTorn, never imports part of a message.
//
// # Durability and names
//
// Write creates the file under a temporary name beginning with ".tmp-",
// writes and fsyncs it, links it to its final name (link(2) never replaces
// an existing file), removes the temporary name and fsyncs the directory;
// only then does it return. The final name is the drop ID: the time in
// microseconds and random bits in base 36 (upper case), unique and in
// arrival order.
// Names beginning with "." are never messages (temporary files, locks);
// a file found torn is renamed to NAME.damaged and kept for the operator.
//
// # Import
//
// The importer (package daemon) commits a file to the spool together with
// its drop ID, then removes the file. A crash between the two leaves a file
// whose ID the spool already knows: the next import only removes it. So a
// message in the drop directory is imported exactly once.
package maildrop

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Envelope is what the spool needs of a message besides its body (the same
// fields as spool.Envelope, which this leaf package may not import).
type Envelope struct {
	From       string      `json:"from"`
	Recipients []Recipient `json:"rcpt"`
	Ret        string      `json:"ret,omitempty"`
	EnvID      string      `json:"envid,omitempty"`
	Body8Bit   bool        `json:"8bit,omitempty"`
	SMTPUTF8   bool        `json:"smtputf8,omitempty"`
	Origin     string      `json:"origin,omitempty"`
}

// Recipient is one envelope recipient with its RFC 3461 parameters.
type Recipient struct {
	Addr   string `json:"addr"`
	Notify string `json:"notify,omitempty"`
	ORcpt  string `json:"orcpt,omitempty"`
}

const (
	magic        = "relayq-drop/1\n"
	trailerMagic = "\nrelayq-drop-end "
	trailerLen   = len(trailerMagic) + 16 + 1 + 8 + 1
	// DamagedSuffix is appended to the name of a torn file.
	DamagedSuffix = ".damaged"
	tmpPrefix     = ".tmp-"
	// maxHeader bounds the envelope line (a sanity limit on reading).
	maxHeader = 16 << 20
)

// castagnoli is the CRC-32C table, made on first use: making it (the
// SSE4.2 tables) cost every sendmail start 0.2 ms, also those that submit
// through the daemon's socket and never write a drop file.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// ErrTorn is wrapped by Open when a file is not a complete drop file.
var ErrTorn = errors.New("drop file is torn or damaged")

// ErrInvalid is wrapped by Write when the envelope cannot be stored exactly
// (text that is not UTF-8, no recipients).
var ErrInvalid = errors.New("invalid envelope")

// Dir is the drop directory of the spool file spoolPath: "maildrop" beside
// it.
func Dir(spoolPath string) string {
	return filepath.Join(filepath.Dir(spoolPath), "maildrop")
}

// Write stores one message in dir and returns its drop ID once the file and
// the directory entry are on disk. dir is created when missing, with the
// permissions of its parent (the spool directory), and when the caller is
// root, owned by the parent's owner, as are the files: the daemon, which
// may run as a service user, must be able to remove what root dropped.
// Errors wrap the cause (fs.ErrPermission when the directory cannot be
// written).
func Write(dir string, env Envelope, body io.Reader) (id string, err error) {
	if err := check(env); err != nil {
		return "", err
	}
	hdr, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("drop file: %w", err)
	}
	owner, err := ensureDir(dir)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("drop directory: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(magic)
	w.Write(hdr)
	w.WriteByte('\n')
	h := crc32.New(castagnoli())
	n, err := io.Copy(io.MultiWriter(w, h), body)
	if err != nil {
		return "", fmt.Errorf("drop file: %w", err)
	}
	fmt.Fprintf(w, "%s%016x %08x\n", trailerMagic, n, h.Sum32())
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("drop file %s: %w", tmp, err)
	}
	if owner != nil {
		_ = f.Chown(owner.uid, owner.gid)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("drop file %s: fsync: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("drop file %s: %w", tmp, err)
	}
	for tries := 0; ; tries++ {
		id = newID()
		err = os.Link(tmp, filepath.Join(dir, id))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || tries >= 10 {
			return "", fmt.Errorf("drop file: %w", err)
		}
	}
	_ = os.Remove(tmp) // the name is on disk under id; a left-over temporary is swept later
	if err := syncDir(dir); err != nil {
		// The file is linked; whether the entry survives a crash is
		// unknown. Report failure only if it can be withdrawn.
		if os.Remove(filepath.Join(dir, id)) == nil {
			return "", err
		}
	}
	return id, nil
}

func check(env Envelope) error {
	if len(env.Recipients) == 0 {
		return fmt.Errorf("drop file: %w: no recipients", ErrInvalid)
	}
	vals := []string{env.From, env.Ret, env.EnvID, env.Origin}
	for _, r := range env.Recipients {
		vals = append(vals, r.Addr, r.Notify, r.ORcpt)
	}
	for _, v := range vals {
		if !utf8.ValidString(v) {
			return fmt.Errorf("drop file: %w: %q is not valid UTF-8", ErrInvalid, v)
		}
	}
	return nil
}

// newID is the time in microseconds (base 36, 11 digits, so names sort in
// arrival order) and 40 random bits (8 digits), in upper case like the
// spool's queue IDs.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := binary.BigEndian.Uint64(b[:]) & (1<<40 - 1)
	t := strconv.FormatInt(time.Now().UnixMicro(), 36)
	s := strconv.FormatUint(r, 36)
	return strings.ToUpper(strings.Repeat("0", 11-len(t)) + t + strings.Repeat("0", 8-len(s)) + s)
}

// ValidID reports whether name is a drop ID (a message's file name).
func ValidID(name string) bool {
	if len(name) != 19 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

type owner struct{ uid, gid int }

// ensureDir creates dir if missing; for root it returns the owner files
// should get (the parent's).
func ensureDir(dir string) (*owner, error) {
	parent, err := os.Stat(filepath.Dir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		// As spool.Open: the spool directory is created, private.
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, fmt.Errorf("drop directory: %w", err)
		}
		parent, err = os.Stat(filepath.Dir(dir))
	}
	if err != nil {
		return nil, fmt.Errorf("drop directory: %w", err)
	}
	var own *owner
	if st, ok := parent.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
		own = &owner{int(st.Uid), int(st.Gid)}
	}
	if _, err := os.Stat(dir); err == nil {
		return own, nil
	}
	if err := os.Mkdir(dir, parent.Mode().Perm()|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("drop directory: %w", err)
	}
	if own != nil {
		_ = os.Chown(dir, own.uid, own.gid)
	}
	_ = syncDir(filepath.Dir(dir))
	return own, nil
}

// Prepare creates dir (as Write would) and the lock files, so that a
// daemon running as a service user owns them.
func Prepare(dir string) error {
	if _, err := ensureDir(dir); err != nil {
		return err
	}
	for _, n := range []string{runLockName, waitLockName} {
		f, err := os.OpenFile(filepath.Join(dir, n), os.O_RDONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("drop directory: %w", err)
		}
		f.Close()
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("drop directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("drop directory %s: fsync: %w", dir, err)
	}
	return nil
}

// Entry is one file of the drop directory.
type Entry struct {
	ID      string    // the drop ID (the file name without DamagedSuffix)
	Path    string    // the file
	ModTime time.Time // when it was written
	Damaged bool      // found torn and set aside
}

// List returns the messages in dir in arrival order (damaged files too,
// marked). A missing directory is empty.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drop directory: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
			continue
		}
		e := Entry{ID: name, Path: filepath.Join(dir, name)}
		if base, ok := strings.CutSuffix(name, DamagedSuffix); ok {
			e.ID, e.Damaged = base, true
		}
		if !ValidID(e.ID) {
			continue
		}
		if fi, err := de.Info(); err == nil {
			e.ModTime = fi.ModTime()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// kickName is the wake-up flag: a run that found the run lock held
// creates it, so that the holder runs the queue once more (a flush or a
// release made messages due that no drop file announces).
const kickName = ".kick"

// Kick asks the holder of the run lock for one more delivery pass; Pending
// reports it until ClearKick.
func Kick(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, kickName), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("drop directory: %w", err)
	}
	return f.Close()
}

// ClearKick removes the wake-up flag before a delivery pass.
func ClearKick(dir string) { _ = os.Remove(filepath.Join(dir, kickName)) }

// Pending reports whether dir holds a message to import (damaged files do
// not count) or a wake-up flag (Kick). Errors count as pending: better a
// wasted run than a lost wake-up.
func Pending(dir string) bool {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(64)
		for _, n := range names {
			if ValidID(n) || n == kickName {
				return true
			}
		}
		if err == io.EOF {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// File is an open drop file: its envelope, and its body (checked against
// the trailer's size and CRC before Open returns).
type File struct {
	ID       string
	Envelope Envelope
	Size     int64 // body size
	f        *os.File
	off      int64
}

// Open reads and checks the drop file at path. A file that is not complete
// wraps ErrTorn.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("drop file: %w", err)
	}
	df, err := check1(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return df, nil
}

func check1(f *os.File, path string) (*File, error) {
	torn := func(what string) error { return fmt.Errorf("drop file %s: %w: %s", path, ErrTorn, what) }
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("drop file: %w", err)
	}
	br := bufio.NewReader(io.LimitReader(f, maxHeader))
	m, err := br.ReadString('\n')
	if err != nil || m != magic {
		return nil, torn("no relayq-drop/1 header")
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, torn("envelope line not terminated")
	}
	var env Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, torn("envelope: " + err.Error())
	}
	start := int64(len(magic) + len(line))
	if fi.Size() < start+int64(trailerLen) {
		return nil, torn("no end marker")
	}
	tr := make([]byte, trailerLen)
	if _, err := f.ReadAt(tr, fi.Size()-int64(trailerLen)); err != nil {
		return nil, fmt.Errorf("drop file %s: %w", path, err)
	}
	if !bytes.HasPrefix(tr, []byte(trailerMagic)) || tr[trailerLen-1] != '\n' {
		return nil, torn("no end marker")
	}
	fields := strings.Fields(string(tr[len(trailerMagic):]))
	if len(fields) != 2 {
		return nil, torn("bad end marker")
	}
	size, err1 := strconv.ParseInt(fields[0], 16, 64)
	sum, err2 := strconv.ParseUint(fields[1], 16, 32)
	if err1 != nil || err2 != nil || size != fi.Size()-start-int64(trailerLen) {
		return nil, torn("body size does not match the end marker")
	}
	h := crc32.New(castagnoli())
	if _, err := io.Copy(h, io.NewSectionReader(f, start, size)); err != nil {
		return nil, fmt.Errorf("drop file %s: %w", path, err)
	}
	if h.Sum32() != uint32(sum) {
		return nil, torn("body checksum does not match")
	}
	if len(env.Recipients) == 0 {
		return nil, torn("no recipients")
	}
	return &File{ID: filepath.Base(path), Envelope: env, Size: size, f: f, off: start}, nil
}

// Body returns a reader of the body from its start.
func (d *File) Body() io.Reader { return io.NewSectionReader(d.f, d.off, d.Size) }

// Close closes the file.
func (d *File) Close() error { return d.f.Close() }

// Remove unlinks the drop file at path once its message is in the spool.
// The directory is not fsynced: a file that comes back after a crash is
// recognised by its ID and removed again.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop file: %w", err)
	}
	return nil
}

// SetAside renames a torn file to NAME.damaged, where List still shows it
// and imports skip it.
func SetAside(path string) error {
	if err := os.Rename(path, path+DamagedSuffix); err != nil {
		return fmt.Errorf("drop file: %w", err)
	}
	return nil
}

// SweepTemp removes temporary files older than age: writers that died
// before linking their file (a killed sendmail). Their callers were never
// told "accepted".
func SweepTemp(dir string, age time.Duration) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), tmpPrefix) {
			continue
		}
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > age {
			if os.Remove(filepath.Join(dir, de.Name())) == nil {
				n++
			}
		}
	}
	return n
}
