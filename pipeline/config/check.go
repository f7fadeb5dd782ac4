package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Check parses a configuration file's bytes field by field and returns the
// configuration, with defaults applied, and every problem found: YAML that
// does not parse, unknown fields, values of the wrong type, and what
// Validate refuses, each with its YAML path (such as
// detectors[0].destinations[0].destinationProperties.destinationArn). It
// never connects anywhere. The configuration is usable only when Problems is
// empty.
func Check(b []byte) (*Config, Problems) {
	c, ps := Decode(b)
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		if vps, ok := err.(Problems); ok {
			ps = append(ps, vps...)
		}
	}
	return c, ps
}

// Decode parses a configuration file's bytes field by field, without
// defaults or validation, and returns every problem of syntax, unknown
// fields and types with its YAML path; the fields that decoded are set.
func Decode(b []byte) (*Config, Problems) {
	c := &Config{}
	var ps Problems
	if len(strings.TrimSpace(string(b))) == 0 {
		return c, nil
	}
	var root any
	if err := yaml.UnmarshalWithOptions(b, &root, yaml.UseOrderedMap()); err != nil {
		return c, Problems{{Path: "(file)", Message: "not YAML: " + yaml.FormatError(err, false, true)}}
	}
	decodeInto("", root, reflect.ValueOf(c).Elem(), &ps)
	return c, ps
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// decodeInto decodes node (as go-yaml decodes a document: MapSlice, []any,
// scalars) into v, descending through structs by their yaml tags so that
// every problem is reported at its own path and the rest still decodes.
func decodeInto(path string, node any, v reflect.Value, ps *Problems) {
	add := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "(top level)"
		}
		*ps = append(*ps, Problem{Path: p, Message: fmt.Sprintf(format, args...)})
	}
	if node == nil {
		return // an empty value leaves the default
	}
	t := v.Type()
	switch {
	case reflect.PointerTo(t).Implements(textUnmarshaler), t.Kind() != reflect.Struct && t.Kind() != reflect.Slice && t.Kind() != reflect.Pointer:
		leaf(node, v, add)
		return
	case t.Kind() == reflect.Pointer:
		if t.Elem().Kind() != reflect.Struct {
			leaf(node, v, add)
			return
		}
		nv := reflect.New(t.Elem())
		decodeInto(path, node, nv.Elem(), ps)
		v.Set(nv)
		return
	case t.Kind() == reflect.Slice:
		items, ok := node.([]any)
		if !ok {
			add("expected a list, not %s", describe(node))
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			decodeInto(fmt.Sprintf("%s[%d]", path, i), it, out.Index(i), ps)
		}
		v.Set(out)
		return
	}
	m, ok := node.(yaml.MapSlice)
	if !ok {
		add("expected a mapping of fields, not %s", describe(node))
		return
	}
	fields := yamlFields(t)
	for _, item := range m {
		key := fmt.Sprint(item.Key)
		p := key
		if path != "" {
			p = path + "." + key
		}
		i, ok := fields[key]
		if !ok {
			*ps = append(*ps, Problem{Path: p, Message: fmt.Sprintf("unknown field: expected one of %s", fieldList(fields))})
			continue
		}
		decodeInto(p, item.Value, v.Field(i), ps)
	}
}

// leaf decodes a scalar (or free-form) node by marshalling it back to YAML
// and decoding it into v's type, so that the type's own rules (Duration's
// UnmarshalText) and messages apply.
func leaf(node any, v reflect.Value, add func(string, ...any)) {
	b, err := yaml.Marshal(plain(node))
	if err != nil {
		add("unreadable value: %v", err)
		return
	}
	nv := reflect.New(v.Type())
	if err := yaml.Unmarshal(b, nv.Interface()); err != nil {
		add("%s", cleanYAMLError(err, node, v.Type()))
		return
	}
	v.Set(nv.Elem())
}

// plain turns go-yaml's ordered maps back into plain values for re-encoding.
func plain(node any) any {
	switch n := node.(type) {
	case yaml.MapSlice:
		m := make(map[string]any, len(n))
		for _, it := range n {
			m[fmt.Sprint(it.Key)] = plain(it.Value)
		}
		return m
	case []any:
		out := make([]any, len(n))
		for i, x := range n {
			out[i] = plain(x)
		}
		return out
	}
	return node
}

func cleanYAMLError(err error, node any, t reflect.Type) string {
	msg := yaml.FormatError(err, false, false)
	if i := strings.LastIndex(msg, "] "); i >= 0 && strings.HasPrefix(msg, "[") {
		msg = msg[i+2:]
	}
	msg = strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Int: "a whole number", reflect.Bool: "true or false",
		reflect.Pointer: "true or false", reflect.Int64: "a whole number",
	}[t.Kind()]
	if want != "" && !strings.Contains(msg, "expected") {
		return fmt.Sprintf("%s: expected %s", describe(node), want)
	}
	return msg
}

func describe(node any) string {
	switch n := node.(type) {
	case yaml.MapSlice:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("%q", n)
	default:
		return fmt.Sprintf("%v", n)
	}
}

// yamlFields maps the yaml names of a struct's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		out[name] = i
	}
	return out
}

func fieldList(fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
