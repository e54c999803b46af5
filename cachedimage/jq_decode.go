package cachedimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// decodeJSONStream decodes every JSON text in data, keeping key order;
// numbers become float64 as in jq 1.6.
func decodeJSONStream(data []byte) ([]any, error) {
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var out []any
	for {
		v, err := decodeValue(d)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func decodeValue(d *json.Decoder) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '[':
			arr := []any{}
			for d.More() {
				v, err := decodeValue(d)
				if err != nil {
					return nil, noEOF(err)
				}
				arr = append(arr, v)
			}
			_, err := d.Token()
			return arr, noEOF(err)
		case '{':
			o := &jqObject{vals: map[string]any{}}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, noEOF(err)
				}
				v, err := decodeValue(d)
				if err != nil {
					return nil, noEOF(err)
				}
				o.set(kt.(string), v)
			}
			_, err := d.Token()
			return o, noEOF(err)
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return f, nil
	default: // string, bool, nil
		return t, nil
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
