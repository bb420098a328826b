package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every configuration key.
const Prefix = "RELAYQ"

// field is one configuration key found in the Config struct tags, bound to
// the value it sets.
type field struct {
	*fieldInfo
	v reflect.Value
}

// fieldInfo is what the struct tags say about one key; computed once per
// struct type (tag parsing dominated Load's cost, and every sendmail call
// pays it).
type fieldInfo struct {
	Key      string // full key, e.g. RELAYQ_SPOOL
	Name     string // Go field path, e.g. Core.Spool
	Default  string
	Secret   bool
	Required bool
	index    []int             // field indexes from the root struct
	tag      reflect.StructTag // for Desc, read only by Describe
}

// Desc is the desc tag.
func (fi *fieldInfo) Desc() string { return fi.tag.Get("desc") }

type infoKey struct {
	t      reflect.Type
	prefix string
}

var infoCache sync.Map // infoKey → []*fieldInfo

// fields lists the keys of the struct that ptr points to, in declaration
// order, with the naming rules of envconfig v1.4 (envconfig:"KEY" tag, else
// the upper-cased field name; embedded structs add no prefix, named struct
// fields add their own key as prefix; ignored:"true" and unexported fields
// are skipped). Nil pointers to structs on the way are allocated, as
// envconfig does.
func fields(prefix string, ptr any) []field {
	root := reflect.ValueOf(ptr).Elem()
	k := infoKey{root.Type(), prefix}
	infos, ok := infoCache.Load(k)
	if !ok {
		var out []*fieldInfo
		walk(prefix, "", root.Type(), nil, &out)
		infos, _ = infoCache.LoadOrStore(k, out)
	}
	list := infos.([]*fieldInfo)
	out := make([]field, len(list))
	for i, fi := range list {
		out[i] = field{fieldInfo: fi, v: bind(root, fi.index)}
	}
	return out
}

// bind follows index from root, allocating nil pointers to structs (at the
// leaf too, as envconfig does, so that a *T whose T decodes itself is set).
func bind(v reflect.Value, index []int) reflect.Value {
	for _, x := range index {
		v = v.Field(x)
		for v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
	}
	return v
}

func walk(prefix, path string, t reflect.Type, index []int, out *[]*fieldInfo) {
	for i := 0; i < t.NumField(); i++ {
		ft := t.Field(i)
		if !ft.IsExported() {
			continue
		}
		tags := scanTag(ft.Tag)
		if isTrue(tags["ignored"]) {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		typ := ft.Type
		for typ.Kind() == reflect.Pointer && typ.Elem().Kind() == reflect.Struct {
			typ = typ.Elem()
		}
		name := ft.Name
		if path != "" {
			name = path + "." + ft.Name
		}
		key := ft.Name
		if tag := tags["envconfig"]; tag != "" {
			key = tag
		}
		if prefix != "" {
			key = prefix + "_" + key
		}
		key = strings.ToUpper(key)
		if typ.Kind() == reflect.Struct && convOf(typ) == convPlain {
			inner := prefix
			if !ft.Anonymous {
				inner = key
			}
			walk(inner, name, typ, idx, out)
			continue
		}
		*out = append(*out, &fieldInfo{
			Key:      key,
			Name:     name,
			Default:  tags["default"],
			Secret:   isTrue(tags["secret"]),
			Required: isTrue(tags["required"]),
			index:    idx,
			tag:      ft.Tag,
		})
	}
}

// scanTag reads the tag keys Load needs in one pass over the tag (the
// desc values are long; reflect.StructTag.Get would scan past them once per
// key). The syntax is reflect's: key:"quoted value" pairs separated by
// spaces. A malformed tag yields what was read before the fault.
func scanTag(tag reflect.StructTag) map[string]string {
	out := make(map[string]string, 4)
	t := string(tag)
	for t != "" {
		i := 0
		for i < len(t) && t[i] == ' ' {
			i++
		}
		t = t[i:]
		if t == "" {
			break
		}
		i = 0
		for i < len(t) && t[i] > ' ' && t[i] != ':' && t[i] != '"' && t[i] != 0x7f {
			i++
		}
		if i == 0 || i+1 >= len(t) || t[i] != ':' || t[i+1] != '"' {
			break
		}
		name := t[:i]
		t = t[i+1:]
		i = 1
		esc := false
		for i < len(t) && t[i] != '"' {
			if t[i] == '\\' {
				i++
				esc = true
			}
			i++
		}
		if i >= len(t) {
			break
		}
		raw := t[:i+1]
		t = t[i+1:]
		switch name {
		case "envconfig", "default", "secret", "required", "ignored":
			if !esc {
				out[name] = raw[1 : len(raw)-1]
			} else if v, err := strconv.Unquote(raw); err == nil {
				out[name] = v
			}
		}
	}
	return out
}

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// conv says how a type decodes itself from a string, in envconfig's order
// of preference.
type conv int

const (
	convPlain conv = iota // by kind
	convDecoder
	convSetter
	convText
	convBinary
)

var (
	decoderType = reflect.TypeFor[envconfig.Decoder]()
	setterType  = reflect.TypeFor[envconfig.Setter]()
	textType    = reflect.TypeFor[encoding.TextUnmarshaler]()
	binaryType  = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	convCache   sync.Map // reflect.Type → conv
)

// convOf returns how values of t (or *t) decode.
func convOf(t reflect.Type) conv {
	if c, ok := convCache.Load(t); ok {
		return c.(conv)
	}
	pt := reflect.PointerTo(t)
	c := convPlain
	switch {
	case t.Implements(decoderType) || pt.Implements(decoderType):
		c = convDecoder
	case t.Implements(setterType) || pt.Implements(setterType):
		c = convSetter
	case t.Implements(textType) || pt.Implements(textType):
		c = convText
	case t.Implements(binaryType) || pt.Implements(binaryType):
		c = convBinary
	}
	convCache.Store(t, c)
	return c
}

// iface returns f, or its address, as an interface value implementing it.
func iface(f reflect.Value, it reflect.Type) any {
	if f.Type().Implements(it) {
		return f.Interface()
	}
	return f.Addr().Interface()
}

// setField parses value into f with the conversions of envconfig v1.4's
// processField: Decoder, Setter, TextUnmarshaler, BinaryUnmarshaler, then
// the kinds (time.Duration by time.ParseDuration, integers with base
// prefixes, comma-separated slices, k:v,k:v maps).
func setField(value string, f reflect.Value) error {
	switch convOf(f.Type()) {
	case convDecoder:
		return iface(f, decoderType).(envconfig.Decoder).Decode(value)
	case convSetter:
		return iface(f, setterType).(envconfig.Setter).Set(value)
	case convText:
		return iface(f, textType).(encoding.TextUnmarshaler).UnmarshalText([]byte(value))
	case convBinary:
		return iface(f, binaryType).(encoding.BinaryUnmarshaler).UnmarshalBinary([]byte(value))
	}
	typ := f.Type()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		if f.IsNil() {
			f.Set(reflect.New(typ))
		}
		f = f.Elem()
	}
	switch typ.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		var err error
		if typ == reflect.TypeFor[time.Duration]() {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, typ.Bits())
		}
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 0, typ.Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(value, typ.Bits())
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Slice:
		sl := reflect.MakeSlice(typ, 0, 0)
		if typ.Elem().Kind() == reflect.Uint8 {
			sl = reflect.ValueOf([]byte(value)).Convert(typ)
		} else if strings.TrimSpace(value) != "" {
			parts := strings.Split(value, ",")
			sl = reflect.MakeSlice(typ, len(parts), len(parts))
			for i, p := range parts {
				if err := setField(p, sl.Index(i)); err != nil {
					return err
				}
			}
		}
		f.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(typ)
		if strings.TrimSpace(value) != "" {
			for _, pair := range strings.Split(value, ",") {
				kv := strings.Split(pair, ":")
				if len(kv) != 2 {
					return fmt.Errorf("invalid map item: %q", pair)
				}
				k := reflect.New(typ.Key()).Elem()
				if err := setField(kv[0], k); err != nil {
					return err
				}
				v := reflect.New(typ.Elem()).Elem()
				if err := setField(kv[1], v); err != nil {
					return err
				}
				m.SetMapIndex(k, v)
			}
		}
		f.Set(m)
	default:
		return fmt.Errorf("unsupported type %s", typ)
	}
	return nil
}
