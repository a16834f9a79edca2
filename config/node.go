package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the yaml.Node tree of one file. Every helper takes the
// dotted path of the value it decodes, so that errors name the field.
type decoder struct {
	file string // as shown in errors
	dir  string // directory relative paths (include, secret files) start from
}

func (d *decoder) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) pos(n *yaml.Node) pos { return pos{file: d.file, line: n.Line} }

// resolve follows YAML aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// entry is one key: value pair of a mapping, in file order.
type entry struct {
	key  string
	kn   *yaml.Node // the key, for its line
	val  *yaml.Node
	path string
}

// entries returns the pairs of a mapping with arbitrary keys (connection,
// child and secret names), refusing duplicates. YAML merge keys
// (<<: *anchor, or a list of anchors) add the pairs of the mappings they
// name, below the keys written here.
func (d *decoder) entries(n *yaml.Node, path, what string) ([]entry, error) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errf(n, path, "got %s; expected a mapping of %s", kindName(n), what)
	}
	var out, merged []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, d.errf(k, path, "got %s as a key; expected a name", kindName(k))
		}
		if k.Tag == "!!merge" {
			m, err := d.merge(v, path, what)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return nil, d.errf(k, p, "duplicate key; first given on line %d", first)
		}
		seen[k.Value] = k.Line
		out = append(out, entry{key: k.Value, kn: k, val: v, path: p})
	}
	for _, e := range merged {
		if _, ok := seen[e.key]; !ok {
			seen[e.key] = e.kn.Line
			out = append(out, e)
		}
	}
	return out, nil
}

// merge returns the pairs a merge key's value names; earlier mappings of a
// list win over later ones (YAML merge key rules).
func (d *decoder) merge(v *yaml.Node, path, what string) ([]entry, error) {
	srcs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	}
	var out []entry
	for _, src := range srcs {
		src = resolve(src)
		if src.Kind != yaml.MappingNode {
			return nil, d.errf(src, join(path, "<<"), "got %s; expected an alias of a mapping like *defaults", kindName(src))
		}
		es, err := d.entries(src, path, what)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// fields decodes a mapping whose keys must be among known; an unknown key
// is an error with a "did you mean" for near misses.
func (d *decoder) fields(n *yaml.Node, path string, known ...string) (map[string]entry, error) {
	es, err := d.entries(n, path, "settings")
	if err != nil {
		return nil, err
	}
	out := make(map[string]entry, len(es))
	for _, e := range es {
		ok := false
		for _, k := range known {
			ok = ok || k == e.key
		}
		if !ok {
			return nil, d.errf(e.kn, e.path, "unknown key%s", didYouMean(e.key, known))
		}
		out[e.key] = e
	}
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str decodes a scalar as text (whatever YAML thought its type was, so
// that `secret: 0x1234` and `id: 1234` keep their spelling).
func (d *decoder) str(e entry) (string, error) {
	n := e.val
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", d.errf(n, e.path, "got %s; expected a string", kindName(n))
	}
	return n.Value, nil
}

// oneOf decodes a scalar that must be one of the choices.
func (d *decoder) oneOf(e entry, choices ...string) (string, error) {
	s, err := d.str(e)
	if err != nil {
		return "", err
	}
	for _, c := range choices {
		if s == c {
			return s, nil
		}
	}
	return "", d.errf(e.val, e.path, "%q is not allowed; expected %s", s, orList(choices))
}

func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// boolean accepts true/false and, as swanctl.conf users write, yes/no.
func (d *decoder) boolean(e entry) (bool, error) {
	if e.val.Kind == yaml.ScalarNode {
		switch strings.ToLower(e.val.Value) {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
	}
	return false, d.errf(e.val, e.path, "got %s; expected true or false (yes/no)", kindName(e.val))
}

// integer decodes a whole number in [lo, hi].
func (d *decoder) integer(e entry, lo, hi int64) (int64, error) {
	n := e.val
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			if v < lo || v > hi {
				return 0, d.errf(n, e.path, "%d is out of range; expected %d to %d", v, lo, hi)
			}
			return v, nil
		}
	}
	return 0, d.errf(n, e.path, "got %s; expected a whole number from %d to %d", kindName(n), lo, hi)
}

func (d *decoder) port(e entry) (uint16, error) {
	v, err := d.integer(e, 1, 65535)
	return uint16(v), err
}

// float decodes a number in [lo, hi].
func (d *decoder) float(e entry, lo, hi float64) (float64, error) {
	n := e.val
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsNaN(v) && v >= lo && v <= hi {
			return v, nil
		}
	}
	return 0, d.errf(n, e.path, "got %s; expected a number from %g to %g", kindName(n), lo, hi)
}

// item is one element of a list, with its own path ("x[2]") and node.
type item struct {
	val  string
	node *yaml.Node
	path string
}

// strList decodes a list of strings; a single string is a one-element list.
func (d *decoder) strList(e entry) ([]item, error) {
	n := e.val
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []item{{n.Value, n, e.path}}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errf(n, e.path, "got %s; expected a string or a list of strings", kindName(n))
	}
	out := make([]item, 0, len(n.Content))
	for i, c := range n.Content {
		c = resolve(c)
		p := fmt.Sprintf("%s[%d]", e.path, i)
		if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
			return nil, d.errf(c, p, "got %s; expected a string", kindName(c))
		}
		out = append(out, item{c.Value, c, p})
	}
	return out, nil
}

// commaList is strList where a string may also hold several values
// separated by commas, as swanctl.conf writes lists
// ("10.1.0.0/24,10.1.1.0/24"), so that values can be pasted over.
func (d *decoder) commaList(e entry) ([]item, error) {
	items, err := d.strList(e)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, it := range items {
		if !strings.Contains(it.val, ",") {
			out = append(out, it)
			continue
		}
		for _, part := range strings.Split(it.val, ",") {
			out = append(out, item{strings.TrimSpace(part), it.node, it.path})
		}
	}
	return out, nil
}

// duration decodes "30s", "15m", "4h", "1d", "1h30m" or bare seconds.
// "0" means off where the field allows it.
func (d *decoder) duration(e entry) (time.Duration, error) {
	s, err := d.str(e)
	if err != nil {
		return 0, err
	}
	v, ok := parseDuration(s)
	if !ok {
		return 0, d.errf(e.val, e.path, "%q is not a duration; expected a number with a unit such as 30s, 15m, 4h or 1d", s)
	}
	return v, nil
}

func parseDuration(s string) (time.Duration, bool) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		return time.Duration(n) * 24 * time.Hour, err == nil
	}
	v, err := time.ParseDuration(s)
	return v, err == nil && v >= 0
}

// byteSize decodes "500M", "2G", "64k" (powers of 1024, as strongSwan) or
// a bare number of bytes.
func (d *decoder) byteSize(e entry) (uint64, error) {
	s, err := d.str(e)
	if err != nil {
		return 0, err
	}
	v, ok := parseBytes(s)
	if !ok {
		return 0, d.errf(e.val, e.path, "%q is not a size; expected bytes or a number with k, M, G or T (powers of 1024), e.g. 500M", s)
	}
	return v, nil
}

func parseBytes(s string) (uint64, bool) {
	num := strings.TrimRight(s, "kKMGTiB")
	unit := strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i")
	shift := map[string]uint{"": 0, "k": 10, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || n > math.MaxUint64>>sh {
		return 0, false
	}
	return n << sh, true
}
