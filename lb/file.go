package lb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// FileReader parses successive versions of a groups file. For JSON files
// it decodes and checks again only the groups whose text changed since the
// last version it accepted: at 10,000 groups a one-member change costs one
// group's decoding instead of the whole file's, and little garbage. YAML
// files are decoded whole every time. The zero value is ready to use; a
// FileReader is not safe for concurrent use.
type FileReader struct {
	seed maphash.Seed
	// prev maps the hash of a group's JSON text, in the last accepted
	// version, to the group it decoded to (valid on its own). Groups are
	// shared between versions and must not be modified.
	prev map[textKey]Group
}

// textKey names a group's JSON text by its 64-bit hash and length: a
// collision between two texts of one group list is beyond any practical
// chance (about n²/2⁶⁵).
type textKey struct {
	hash   uint64
	length int
}

// Parse decodes and validates one version of the file. An error leaves the
// reader's memory of the last accepted version as it was.
func (r *FileReader) Parse(data []byte) ([]Group, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return parseYAML(data)
	}
	if r.prev == nil {
		r.seed = maphash.MakeSeed()
	}
	groups, keys, err := r.decodeJSON(trimmed)
	if err != nil {
		return nil, fmt.Errorf("groups file: %w", err)
	}
	known := func(i int) bool { _, ok := r.prev[keys[i]]; return ok }
	if err := validateGroups(groups, known); err != nil {
		return nil, err
	}
	next := make(map[textKey]Group, len(groups))
	for i, k := range keys {
		next[k] = groups[i]
	}
	r.prev = next
	return groups, nil
}

// decodeJSON reads {"groups": [...]}, taking unchanged groups from the
// last accepted version. It finds each group's text with a quick scan and
// hands only new texts to encoding/json, which checks them fully; a text
// seen before was checked then.
func (r *FileReader) decodeJSON(data []byte) ([]Group, []textKey, error) {
	sc := scanner{data: data}
	if err := sc.expect('{'); err != nil {
		return nil, nil, err
	}
	var groups []Group
	var keys []textKey
	for first := true; ; first = false {
		if sc.peek() == '}' && first {
			break
		}
		if !first {
			if c := sc.peek(); c == '}' {
				break
			} else if err := sc.expect(','); err != nil {
				return nil, nil, err
			}
		}
		keyText, err := sc.value()
		if err != nil {
			return nil, nil, err
		}
		var key string
		if err := json.Unmarshal(keyText, &key); err != nil {
			return nil, nil, fmt.Errorf("offset %d: want a field name: %w", sc.pos, err)
		}
		if key != "groups" {
			return nil, nil, fmt.Errorf("json: unknown field %q", key)
		}
		if groups != nil {
			return nil, nil, errors.New(`json: field "groups" given twice`)
		}
		if err := sc.expect(':'); err != nil {
			return nil, nil, err
		}
		// Most versions have as many groups as the one before.
		groups, keys = make([]Group, 0, len(r.prev)), make([]textKey, 0, len(r.prev))
		if bytes.HasPrefix(data[sc.skipSpace():], []byte("null")) {
			sc.pos += len("null")
			continue // "groups": null is an empty list, as for encoding/json
		}
		if err := sc.expect('['); err != nil {
			return nil, nil, fmt.Errorf("groups: want a list: %w", err)
		}
		for i := 0; sc.peek() != ']'; i++ {
			if i > 0 {
				if err := sc.expect(','); err != nil {
					return nil, nil, fmt.Errorf("groups[%d]: %w", i, err)
				}
			}
			raw, err := sc.value()
			if err != nil {
				return nil, nil, fmt.Errorf("groups[%d]: %w", i, err)
			}
			k := textKey{maphash.Bytes(r.seed, raw), len(raw)}
			g, ok := r.prev[k]
			if !ok {
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&g); err != nil {
					return nil, nil, fmt.Errorf("groups[%d]: %w", i, err)
				}
				g.trim()
			}
			groups, keys = append(groups, g), append(keys, k)
		}
		sc.pos++ // ']'
	}
	sc.pos++ // '}'
	if sc.skipSpace() != len(data) {
		return nil, nil, fmt.Errorf("json: data after the top-level object, at offset %d", sc.pos)
	}
	return groups, keys, nil
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

func parseYAML(data []byte) ([]Group, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("groups file: %w", err)
	}
	if err := ValidateAll(f.Groups); err != nil {
		return nil, err
	}
	return f.Groups, nil
}
