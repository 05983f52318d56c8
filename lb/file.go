package lb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A groups file holds DCN groups, in YAML or in JSON. It is the agent's
// groups_file and what 'dlbctl group create -f' and 'dlbctl group edit -f'
// take; it may hold:
//
//   - a document {groups: [...]}, a list of groups;
//   - a single group's document (as 'dlbctl group get NAME -o yaml'
//     writes it);
//   - in JSON, a bare list [...] of groups;
//   - in YAML, several documents (--- between them), each one of the
//     above.
//
// A file whose first character that is not white space is '{' or '[' is
// JSON, any other YAML. Empty documents hold no group: a file of nothing
// else (or {}) yields nil groups, a file with an empty list an empty set,
// not nil. Unknown keys are refused (YAML's errors give the line). Every
// group is validated on its own and, in a list, with the others (names,
// VIP:ports): the field paths of a single group's problems are relative
// to it ("vip"), those of a list start with "groups[i]", i counting the
// groups across the file.

// File is the {groups: [...]} document of a groups file.
type File struct {
	Groups []Group `json:"groups" yaml:"groups"`
}

// ParseFile decodes and validates a groups file of plain Groups (as the
// agent reads it). Decoding errors start with "groups file: "; validation
// errors are *ValidationError.
func ParseFile(data []byte) ([]Group, error) {
	var r FileReader
	cs, err := r.Parse(data)
	if err != nil {
		return nil, err
	}
	var groups []Group
	if cs != nil {
		groups = make([]Group, len(cs))
	}
	for i := range cs {
		groups[i] = cs[i].Group
	}
	return groups, nil
}

// ParseFileOf decodes and validates a groups file whose group documents
// are of type D: Group, or a struct that embeds it (inline in YAML too)
// beside fields of its own, such as controller/wire.Group and its indexes
// (dlbctl reads files written from the API's answers). group returns a
// document's Group. list tells a file that held a list (a groups list, a
// JSON list, or several YAML documents) from one that held a single group.
// Decoding errors are returned as they are, validation errors as
// *ValidationError.
func ParseFileOf[D any](data []byte, group func(*D) *Group) (docs []D, list bool, err error) {
	docs, list, err = decodeFile(data, 0, func(raw []byte) (D, error) { return decodeGroupJSON(raw, group) })
	if err != nil {
		return nil, false, err
	}
	groups := make([]Group, len(docs))
	for i := range docs {
		groups[i] = *group(&docs[i])
	}
	if err := validateFile(groups, list, nil); err != nil {
		return nil, false, err
	}
	return docs, list, nil
}

// validateFile checks a file's groups: a single group on its own, a list
// with ValidateAll's paths. known(i), when not nil, says which groups are
// known to be valid on their own already.
func validateFile(groups []Group, list bool, known func(i int) bool) error {
	if !list && len(groups) == 1 {
		if known != nil && known(0) {
			return nil
		}
		return groups[0].Validate()
	}
	return validateGroups(groups, known)
}

// FileReader parses successive versions of a groups file. For JSON files
// it decodes and checks again only the groups whose text changed since the
// last version it accepted: at 10,000 groups a one-member change costs one
// group's decoding instead of the whole file's, and little garbage. YAML
// files are decoded whole every time. The zero value is ready to use; a
// FileReader is not safe for concurrent use.
type FileReader struct {
	seed maphash.Seed
	// prev maps the hash of a group's JSON text, in the last accepted
	// version, to the index in last of the group it decoded to (checked on
	// its own). Groups are shared between versions (and with the caller)
	// and must not be modified.
	prev map[textKey]int
	last []Checked
}

// textKey names a group's JSON text by its 64-bit hash and length: a
// collision between two texts of one group list is beyond any practical
// chance (about n²/2⁶⁵).
type textKey struct {
	hash   uint64
	length int
}

// Parse decodes and checks one version of the file, as ParseFile, and
// returns its groups checked (the agent's edge: what it installs is
// parsed here, once). An error leaves the reader's memory of the last
// accepted version as it was.
func (r *FileReader) Parse(data []byte) ([]Checked, error) {
	if r.prev == nil {
		r.seed = maphash.MakeSeed()
	}
	// keys are the hashes of the groups' JSON texts, in order (none for
	// YAML).
	var keys []textKey
	groups, list, err := decodeFile(data, len(r.prev), func(raw []byte) (Group, error) {
		k := textKey{maphash.Bytes(r.seed, raw), len(raw)}
		keys = append(keys, k)
		if i, ok := r.prev[k]; ok {
			return r.last[i].Group, nil // checked when it was first seen
		}
		return decodeGroupJSON(raw, func(g *Group) *Group { return g })
	})
	if err != nil {
		return nil, fmt.Errorf("groups file: %w", err)
	}
	fromJSON := len(keys) == len(groups) && len(keys) > 0
	var known func(int) bool
	if fromJSON {
		known = func(i int) bool { _, ok := r.prev[keys[i]]; return ok }
	}
	if err := validateFile(groups, list, known); err != nil {
		return nil, err
	}
	var out []Checked // nil for nothing, as decoded
	if groups != nil {
		out = make([]Checked, len(groups))
	}
	if !fromJSON {
		for i := range groups {
			out[i] = parsed(groups[i])
		}
		r.prev, r.last = nil, nil
		return out, nil
	}
	next := make(map[textKey]int, len(groups))
	for i, k := range keys {
		if j, ok := r.prev[k]; ok {
			out[i] = r.last[j]
		} else {
			out[i] = parsed(groups[i])
		}
		next[k] = i
	}
	r.prev, r.last = next, out
	return out, nil
}

// decodeFile decodes a groups file into its group documents, and tells
// whether it held a list. Each group's JSON text goes through text (which
// decodes it, or takes it from a cache), in order; hint is how many groups
// to expect. YAML is decoded whole.
func decodeFile[D any](data []byte, hint int, text func(raw []byte) (D, error)) ([]D, bool, error) {
	var docs []D
	var list bool
	var err error
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		docs, list, err = decodeJSON(trimmed, hint, text)
	} else {
		docs, list, err = decodeYAML[D](data)
	}
	if err == nil && list && docs == nil {
		docs = []D{} // an empty list is a set: no groups
	}
	return docs, list, err
}

// decodeGroupJSON decodes one group's JSON text, refusing unknown fields.
func decodeGroupJSON[D any](raw []byte, group func(*D) *Group) (D, error) {
	var d D
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, err
	}
	group(&d).trim()
	return d, nil
}

// decodeJSON reads a JSON groups file: {"groups": [...]}, a group's
// object, or [...]. It finds each group's text with a quick scan and hands
// it to text, which decodes it with encoding/json (checking it fully) or
// knows it from before.
func decodeJSON[D any](data []byte, hint int, text func(raw []byte) (D, error)) ([]D, bool, error) {
	sc := scanner{data: data}
	if sc.peek() == '[' {
		sc.pos++
		docs, err := scanItems(&sc, hint, text)
		if err != nil {
			return nil, false, err
		}
		if sc.skipSpace() != len(data) {
			return nil, false, fmt.Errorf("json: data after the top-level list, at offset %d", sc.pos)
		}
		return docs, true, nil
	}
	if err := sc.expect('{'); err != nil {
		return nil, false, err
	}
	var docs []D
	list := false // a "groups" field was read
	// others are the fields beside "groups": a group's.
	var others [][2][]byte
	for first := true; ; first = false {
		if sc.peek() == '}' && first {
			break
		}
		if !first {
			if c := sc.peek(); c == '}' {
				break
			} else if err := sc.expect(','); err != nil {
				return nil, false, err
			}
		}
		keyText, err := sc.value()
		if err != nil {
			return nil, false, err
		}
		var key string
		if err := json.Unmarshal(keyText, &key); err != nil {
			return nil, false, fmt.Errorf("offset %d: want a field name: %w", sc.pos, err)
		}
		if err := sc.expect(':'); err != nil {
			return nil, false, err
		}
		if key != "groups" {
			val, err := sc.value()
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", key, err)
			}
			others = append(others, [2][]byte{keyText, val})
			continue
		}
		if list {
			return nil, false, errors.New(`json: field "groups" given twice`)
		}
		list = true
		if bytes.HasPrefix(data[sc.skipSpace():], []byte("null")) {
			sc.pos += len("null")
			continue // "groups": null is an empty list, as for encoding/json
		}
		if err := sc.expect('['); err != nil {
			return nil, false, fmt.Errorf("groups: want a list: %w", err)
		}
		if docs, err = scanItems(&sc, hint, text); err != nil {
			return nil, false, err
		}
	}
	sc.pos++ // '}'
	if sc.skipSpace() != len(data) {
		return nil, false, fmt.Errorf("json: data after the top-level object, at offset %d", sc.pos)
	}
	switch {
	case list && len(others) > 0:
		return nil, false, bothError[D](others)
	case list:
		return docs, true, nil
	case len(others) == 0:
		return nil, false, nil // {}: no group
	}
	d, err := text(data)
	if err != nil {
		return nil, false, err
	}
	return []D{d}, false, nil
}

// bothError explains an object with a "groups" list and other fields:
// the first unknown one, or that a group's fields are there too.
func bothError[D any](others [][2][]byte) error {
	obj := []byte{'{'}
	for i, kv := range others {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = append(append(append(obj, kv[0]...), ':'), kv[1]...)
	}
	obj = append(obj, '}')
	var d D
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return err
	}
	return errors.New("json: the object has both a groups list and the fields of a group")
}

// scanItems reads the groups of a list whose '[' was read, and its ']'.
func scanItems[D any](sc *scanner, hint int, text func(raw []byte) (D, error)) ([]D, error) {
	// Most versions have as many groups as the one before.
	docs := make([]D, 0, hint)
	for i := 0; sc.peek() != ']'; i++ {
		if i > 0 {
			if err := sc.expect(','); err != nil {
				return nil, fmt.Errorf("groups[%d]: %w", i, err)
			}
		}
		raw, err := sc.value()
		if err != nil {
			return nil, fmt.Errorf("groups[%d]: %w", i, err)
		}
		d, err := text(raw)
		if err != nil {
			return nil, fmt.Errorf("groups[%d]: %w", i, err)
		}
		docs = append(docs, d)
	}
	sc.pos++ // ']'
	return docs, nil
}

// yamlDoc is one YAML document of a groups file: a group, or a groups
// list.
type yamlDoc[D any] struct {
	Group  D   `yaml:",inline"`
	Groups []D `yaml:"groups"`
}

// decodeYAML reads a YAML groups file, every document of it.
func decodeYAML[D any](data []byte) ([]D, bool, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var docs []D
	list, n := false, 0
	for i := 1; ; i++ {
		var d yamlDoc[D]
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, yamlError(err)
		}
		hasGroup := !reflect.ValueOf(d.Group).IsZero()
		switch {
		case d.Groups != nil && hasGroup:
			return nil, false, fmt.Errorf("document %d has both a groups: list and the fields of a group", i)
		case d.Groups != nil:
			docs = append(docs, d.Groups...)
			list = true
			n++
		case hasGroup:
			docs = append(docs, d.Group)
			n++
		}
	}
	return docs, list || n > 1, nil
}

// yamlError drops the Go type from yaml's "field x not found in type T":
// the line and the field say it all.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for i, s := range te.Errors {
			if j := strings.Index(s, " in type "); j >= 0 {
				te.Errors[i] = s[:j]
			}
		}
	}
	return err
}

// scanner finds the extent of JSON values without decoding them: strings
// (with escapes) and nesting are followed, everything else is left to
// encoding/json.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) skipSpace() int {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return s.pos
		}
	}
	return s.pos
}

// peek is the next byte that is not white space, or 0 at the end.
func (s *scanner) peek() byte {
	if s.skipSpace() == len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) expect(c byte) error {
	switch got := s.peek(); got {
	case c:
		s.pos++
		return nil
	case 0:
		return fmt.Errorf("json: unexpected end of input, want %q", c)
	default:
		return fmt.Errorf("json: offset %d: want %q, found %q", s.pos, c, got)
	}
}

// value returns the text of the next value: a string, an object or a list
// (with everything nested), or a bare literal up to the next delimiter.
func (s *scanner) value() ([]byte, error) {
	start := s.skipSpace()
	depth := 0
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			for s.pos < len(s.data) && s.data[s.pos] != '"' {
				if s.data[s.pos] == '\\' {
					s.pos++
				}
				s.pos++
			}
			if s.pos >= len(s.data) {
				return nil, errors.New("json: unterminated string")
			}
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return s.literal(start)
			}
			depth--
		case depth == 0 && (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return s.literal(start)
		}
		s.pos++
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return s.data[start:s.pos], nil
		}
	}
	if depth > 0 {
		return nil, errors.New("json: unexpected end of input")
	}
	return s.literal(start)
}

func (s *scanner) literal(start int) ([]byte, error) {
	if s.pos == start {
		if s.pos == len(s.data) {
			return nil, errors.New("json: unexpected end of input")
		}
		return nil, fmt.Errorf("json: offset %d: unexpected %q", s.pos, s.data[s.pos])
	}
	return s.data[start:s.pos], nil
}

// trim gives the group's lists their exact lengths: the decoder grows
// them by doubling, and a long-lived set of 10,000 groups of 10 members
// would otherwise keep 6 members' worth of spare room each.
func (g *Group) trim() {
	if cap(g.Members) > len(g.Members) {
		g.Members = slices.Clone(g.Members)
	}
	if cap(g.Ports) > len(g.Ports) {
		g.Ports = slices.Clone(g.Ports)
	}
}
