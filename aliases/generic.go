package aliases

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Generic is a sender rewriting table in the syntax of Postfix generic(5),
// used for relays that accept mail only from the authenticated address.
//
// # File format
//
//	# comment
//	root@host.example.com   alerts@example.com
//	www-data                web@example.com
//	@host.example.com       alerts@example.com
//	@old.example.com        @new.example.com
//
// One entry per line: PATTERN, blank space, RESULT. Lines starting with
// blank space continue the line before; '#' lines and blank lines are
// ignored. PATTERN is user@domain, a bare user (matched only for local
// addresses: bare names and names at the local domains), or @domain. RESULT
// is an address, or @domain to keep the local part and replace the domain.
// Matching ignores case. Lookup order, as in generic(5): user@domain, then
// user (local addresses only), then @domain. The first PATTERN given wins;
// a repeated one is an error naming both lines.
type Generic struct {
	exact  map[string]string // "user@domain"
	user   map[string]string // "user"
	domain map[string]string // "domain" (pattern @domain)
	lines  map[string]string // pattern → file:line
}

// ParseGenericFile reads a generic table from a file.
func ParseGenericFile(path string) (*Generic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("generic map: %w", err)
	}
	defer f.Close()
	return ParseGeneric(f, path)
}

// ParseGeneric reads a generic table; name is used in error messages.
func ParseGeneric(r io.Reader, name string) (*Generic, error) {
	g := &Generic{exact: map[string]string{}, user: map[string]string{}, domain: map[string]string{}, lines: map[string]string{}}
	err := logicalLines(r, name, func(lineno int, line string) error {
		where := fmt.Sprintf("%s:%d", name, lineno)
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("%s: expected PATTERN RESULT, found %d fields in %q", where, len(f), clip(line))
		}
		pat, res := strings.ToLower(f[0]), f[1]
		if err := checkPattern(pat); err != nil {
			return fmt.Errorf("%s: pattern %q: %w", where, f[0], err)
		}
		if err := checkResult(res); err != nil {
			return fmt.Errorf("%s: result %q: %w", where, res, err)
		}
		if prev, ok := g.lines[pat]; ok {
			return fmt.Errorf("%s: pattern %q already given at %s", where, f[0], prev)
		}
		g.lines[pat] = where
		switch at := strings.IndexByte(pat, '@'); {
		case at == 0:
			g.domain[pat[1:]] = res
		case at > 0:
			g.exact[pat] = res
		default:
			g.user[pat] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func checkPattern(p string) error {
	if strings.Count(p, "@") > 1 {
		return fmt.Errorf("more than one '@'")
	}
	if strings.HasSuffix(p, "@") || p == "@" {
		return fmt.Errorf("empty domain")
	}
	return plainChars(p)
}

func checkResult(r string) error {
	if strings.HasPrefix(r, "@") {
		if len(r) == 1 || strings.Count(r, "@") > 1 {
			return fmt.Errorf("not @domain")
		}
		return plainChars(r)
	}
	at := strings.LastIndexByte(r, '@')
	if at <= 0 || at == len(r)-1 {
		return fmt.Errorf("not user@domain or @domain")
	}
	if r[0] == '-' {
		return fmt.Errorf("starts with '-'")
	}
	return plainChars(r)
}

func plainChars(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"' {
			return fmt.Errorf("contains %q", c)
		}
	}
	return nil
}

// Len returns the number of entries.
func (g *Generic) Len() int {
	if g == nil {
		return 0
	}
	return len(g.lines)
}

// Rewrite returns the rewritten address and true when an entry matches.
// local tells whether addr is a local address (bare or at a local
// domain), for the bare-user patterns. The null sender ("") is never
// rewritten.
func (g *Generic) Rewrite(addr string, local bool) (string, bool) {
	if g == nil || addr == "" {
		return addr, false
	}
	low := strings.ToLower(addr)
	at := strings.LastIndexByte(low, '@')
	user, dom := low, ""
	if at >= 0 {
		user, dom = low[:at], low[at+1:]
	}
	apply := func(res string) string {
		if strings.HasPrefix(res, "@") {
			lp := addr
			if at >= 0 {
				lp = addr[:at]
			}
			return lp + res
		}
		return res
	}
	if at >= 0 {
		if res, ok := g.exact[low]; ok {
			return apply(res), true
		}
	}
	if local {
		if res, ok := g.user[user]; ok {
			return apply(res), true
		}
	}
	if dom != "" {
		if res, ok := g.domain[dom]; ok {
			return apply(res), true
		}
	}
	return addr, false
}
