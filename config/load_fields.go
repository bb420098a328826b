package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every configuration key.
const Prefix = "RELAYQ"

// field is one configuration key found in the Config struct tags.
type field struct {
	Key      string // full key, e.g. RELAYQ_SPOOL
	Name     string // Go field path, e.g. Core.Spool
	Default  string
	Desc     string
	Secret   bool
	Required bool
	v        reflect.Value
}

// fields lists the keys of the struct that ptr points to, in declaration
// order, with the naming rules of envconfig v1.4 (envconfig:"KEY" tag, else
// the upper-cased field name; embedded structs add no prefix, named struct
// fields add their own key as prefix; ignored:"true" and unexported fields
// are skipped).
func fields(prefix string, ptr any) []field {
	var out []field
	walk(prefix, "", reflect.ValueOf(ptr).Elem(), &out)
	return out
}

func walk(prefix, path string, s reflect.Value, out *[]field) {
	t := s.Type()
	for i := 0; i < s.NumField(); i++ {
		f := s.Field(i)
		ft := t.Field(i)
		if !f.CanSet() || isTrue(ft.Tag.Get("ignored")) {
			continue
		}
		for f.Kind() == reflect.Pointer {
			if f.IsNil() {
				if f.Type().Elem().Kind() != reflect.Struct {
					break
				}
				f.Set(reflect.New(f.Type().Elem()))
			}
			f = f.Elem()
		}
		name := ft.Name
		if path != "" {
			name = path + "." + ft.Name
		}
		key := ft.Name
		if tag := ft.Tag.Get("envconfig"); tag != "" {
			key = tag
		}
		if prefix != "" {
			key = prefix + "_" + key
		}
		key = strings.ToUpper(key)
		if f.Kind() == reflect.Struct && !decodes(f) {
			inner := prefix
			if !ft.Anonymous {
				inner = key
			}
			walk(inner, name, f, out)
			continue
		}
		*out = append(*out, field{
			Key:      key,
			Name:     name,
			Default:  ft.Tag.Get("default"),
			Desc:     ft.Tag.Get("desc"),
			Secret:   isTrue(ft.Tag.Get("secret")),
			Required: isTrue(ft.Tag.Get("required")),
			v:        f,
		})
	}
}

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// decodes reports whether the value decodes itself from a string.
func decodes(f reflect.Value) bool {
	return as[envconfig.Decoder](f) != nil || as[envconfig.Setter](f) != nil ||
		as[encoding.TextUnmarshaler](f) != nil || as[encoding.BinaryUnmarshaler](f) != nil
}

// as returns f (or its address) as a T, or the zero T.
func as[T any](f reflect.Value) T {
	var zero T
	if !f.CanInterface() {
		return zero
	}
	if t, ok := f.Interface().(T); ok {
		return t
	}
	if f.CanAddr() {
		if t, ok := f.Addr().Interface().(T); ok {
			return t
		}
	}
	return zero
}

// setField parses value into f with the conversions of envconfig v1.4's
// processField: Decoder, Setter, TextUnmarshaler, BinaryUnmarshaler, then
// the kinds (time.Duration by time.ParseDuration, integers with base
// prefixes, comma-separated slices, k:v,k:v maps).
func setField(value string, f reflect.Value) error {
	if d := as[envconfig.Decoder](f); d != nil {
		return d.Decode(value)
	}
	if s := as[envconfig.Setter](f); s != nil {
		return s.Set(value)
	}
	if t := as[encoding.TextUnmarshaler](f); t != nil {
		return t.UnmarshalText([]byte(value))
	}
	if b := as[encoding.BinaryUnmarshaler](f); b != nil {
		return b.UnmarshalBinary([]byte(value))
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
