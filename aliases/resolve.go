package aliases

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// DefaultLimit is the default bound on the addresses one expansion yields
// (as Postfix expansion_limit).
const DefaultLimit = 1000

// maxIncludeDepth bounds nested :include: files.
const maxIncludeDepth = 10

// maxDepth bounds alias-within-alias nesting (Postfix: 1000 recursions;
// real files nest a few levels).
const maxDepth = 100

// maxIncludeSize bounds one :include: file.
const maxIncludeSize = 1 << 20

// ErrLimit is wrapped when an expansion yields too many addresses.
var ErrLimit = errors.New("alias expansion limit exceeded")

// Resolver expands and qualifies recipient addresses; see the package doc.
type Resolver struct {
	Aliases      *Table   // may be nil: no aliases
	Domain       string   // appended to bare names ("root" → "root@Domain"); "" leaves them bare
	LocalDomains []string // domains whose addresses are local names too (e.g. "localhost", the host name)
	Limit        int      // most addresses one Resolve may return; 0 means DefaultLimit
	// Open opens an :include: file; nil means os.Open.
	Open func(path string) (io.ReadCloser, error)
	// Warn receives non-fatal notes (skipped program or file targets); may be nil.
	Warn func(msg string)
}

// IsLocal reports whether addr is a local name: bare (no '@') or at one of
// the local domains. It returns the local part.
func (r *Resolver) IsLocal(addr string) (string, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, true
	}
	dom := strings.TrimSuffix(addr[at+1:], ".")
	for _, d := range r.LocalDomains {
		if d != "" && strings.EqualFold(dom, strings.TrimSuffix(d, ".")) {
			return addr[:at], true
		}
	}
	return "", false
}

// Qualify appends "@Domain" to a bare name; other addresses are returned
// unchanged.
func (r *Resolver) Qualify(addr string) string {
	if r.Domain == "" || strings.IndexByte(addr, '@') >= 0 || addr == "" {
		return addr
	}
	return addr + "@" + r.Domain
}

// Resolve expands one recipient address: aliases for local names
// (recursively, loops ending at the repeated name), :include: files, then
// qualification of the bare names left. Non-local addresses are returned
// as given.
func (r *Resolver) Resolve(addr string) ([]string, error) {
	ex := &expansion{r: r, seen: map[string]bool{}}
	limit := r.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	ex.limit = limit
	if err := ex.expand(addr, nil, 0); err != nil {
		return nil, err
	}
	return ex.out, nil
}

type expansion struct {
	r     *Resolver
	out   []string
	seen  map[string]bool // lower-cased results, for dedup
	limit int
	addrs int // address targets met so far (program/file targets not counted)
}

func (ex *expansion) emit(addr string) error {
	a := ex.r.Qualify(addr)
	if local, ok := ex.r.IsLocal(a); ok && strings.IndexByte(a, '@') >= 0 && ex.r.Domain != "" {
		// name@localhost etc.: the relay cannot deliver to the local
		// host's names, so use the local domain.
		a = local + "@" + ex.r.Domain
	}
	k := strings.ToLower(a)
	if ex.seen[k] {
		return nil
	}
	if len(ex.out) >= ex.limit {
		return fmt.Errorf("aliases: more than %d addresses: %w", ex.limit, ErrLimit)
	}
	ex.seen[k] = true
	ex.out = append(ex.out, a)
	return nil
}

// expand handles one address; path holds the lower-cased local names being
// expanded above it.
func (ex *expansion) expand(addr string, path []string, includeDepth int) error {
	local, ok := ex.r.IsLocal(addr)
	if !ok {
		return ex.emit(addr)
	}
	key := strings.ToLower(unquote(local))
	for _, p := range path {
		if p == key {
			return ex.emit(addr) // loop: the name stands for itself
		}
	}
	targets, source, found := ex.r.Aliases.Lookup(key)
	if !found {
		return ex.emit(addr)
	}
	if len(path) >= maxDepth {
		return fmt.Errorf("%s: alias %q: nested more than %d deep", source, key, maxDepth)
	}
	path = append(path, key)
	before := ex.addrs
	for _, t := range targets {
		if err := ex.target(t, source, path, includeDepth); err != nil {
			return err
		}
	}
	if ex.addrs == before {
		// Nothing deliverable (only program/file targets): keep the name.
		ex.warn(fmt.Sprintf("%s: alias %q has no address relayq can deliver to; using %s", source, key, ex.r.Qualify(local)))
		return ex.emit(addr)
	}
	return nil
}

func (ex *expansion) warn(msg string) {
	if ex.r.Warn != nil {
		ex.r.Warn(msg)
	}
}

func (ex *expansion) target(t, source string, path []string, includeDepth int) error {
	if file, ok := isInclude(t); ok {
		return ex.include(file, source, path, includeDepth+1)
	}
	if isPipeOrFile(t) {
		ex.warn(fmt.Sprintf("%s: skipping program or file target %q (relayq has no local delivery)", source, t))
		return nil
	}
	a, err := Address(t)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	ex.addrs++
	return ex.expand(a, path, includeDepth)
}

func (ex *expansion) include(file, source string, path []string, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: :include:%s: nested more than %d deep", source, file, maxIncludeDepth)
	}
	if !strings.HasPrefix(file, "/") {
		return fmt.Errorf("%s: :include:%s: not an absolute path", source, file)
	}
	open := ex.r.Open
	if open == nil {
		open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	f, err := open(file)
	if err != nil {
		return fmt.Errorf("%s: :include: %w", source, err)
	}
	defer f.Close()
	items, err := ParseList(io.LimitReader(f, maxIncludeSize+1), file)
	if err != nil {
		return fmt.Errorf("%s: :include: %w", source, err)
	}
	for _, it := range items {
		if err := ex.target(it.Target, it.Source, path, depth); err != nil {
			return err
		}
	}
	return nil
}

// ListItem is one target of an :include: file.
type ListItem struct {
	Target string // as written
	Source string // "file:line"
}

// ParseList reads an :include: file: targets separated by commas and/or
// newlines, '#' comment lines, blank lines ignored. Targets are checked as
// in an aliases file.
func ParseList(r io.Reader, name string) ([]ListItem, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxIncludeSize {
		return nil, fmt.Errorf("%s: larger than %d octets", name, maxIncludeSize)
	}
	var items []ListItem
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimRight(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		if strings.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("%s: NUL character", where)
		}
		parts, err := splitList(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for _, p := range parts {
			if err := checkTarget(p); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			items = append(items, ListItem{Target: p, Source: where})
		}
	}
	return items, nil
}
