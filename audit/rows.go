package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/tapproof/tapproof/influx"
)

// chunk is one JSON object of a chunked InfluxQL answer. The rows stay raw
// and are scanned by eachRow, which allocates nothing per row.
type chunk struct {
	Error   string `json:"error"`
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string            `json:"name"`
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  json.RawMessage   `json:"values"`
		} `json:"series"`
		Partial bool `json:"partial"`
	} `json:"results"`
}

// readChunks reads a chunked InfluxQL answer of one statement and hands fn
// each row as a point. An answer that ends while InfluxDB still announced
// more (partial) is an error, not a short audit.
func readChunks(r io.Reader, fn func(*Point) error) error {
	dec := json.NewDecoder(r)
	var (
		p       Point
		partial bool
	)
	for {
		var c chunk
		if err := dec.Decode(&c); err == io.EOF {
			if partial {
				return errors.New("the answer ended before its last chunk")
			}
			return nil
		} else if err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		if c.Error != "" {
			return errors.New(c.Error)
		}
		partial = false
		for _, res := range c.Results {
			if res.Error != "" {
				return errors.New(res.Error)
			}
			partial = partial || res.Partial
			for _, s := range res.Series {
				cols, err := columnsOf(s.Columns)
				if err != nil {
					return err
				}
				if err := eachRow(s.Values, cols, &Series{Tags: s.Tags}, &p, fn); err != nil {
					return err
				}
			}
		}
	}
}

// column says what a column of the answer is.
type column struct {
	name string
	kind int
}

// Kinds of column.
const (
	colOther = iota
	colTime
	colValue
	colSeq
	colLeafIndex
	colDetectionLimit
)

func columnsOf(names []string) ([]column, error) {
	cols := make([]column, len(names))
	for i, n := range names {
		cols[i].name = n
		switch n {
		case "time":
			cols[i].kind = colTime
		case influx.FieldValue:
			cols[i].kind = colValue
		case influx.FieldSeq:
			cols[i].kind = colSeq
		case influx.FieldLeafIndex:
			cols[i].kind = colLeafIndex
		case influx.FieldDetectionLimit:
			cols[i].kind = colDetectionLimit
		}
	}
	if len(cols) == 0 || cols[0].kind != colTime {
		return nil, fmt.Errorf("answer columns %q: want time first", names)
	}
	return cols, nil
}

var errRows = errors.New("the answer's values are not rows of scalars")

// eachRow scans b, a JSON array of rows of scalars, into p, one row at a
// time, and hands p to fn.
func eachRow(b []byte, cols []column, s *Series, p *Point, fn func(*Point) error) error {
	i := skipSpace(b, 0)
	if i == len(b) || string(b[i:]) == "null" {
		return nil
	}
	if b[i] != '[' {
		return errRows
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '[' {
			return errRows
		}
		*p = Point{Series: s, Other: p.Other[:0]}
		i++
		for c := 0; ; c++ {
			start := skipSpace(b, i)
			end, err := scalarEnd(b, start)
			if err != nil {
				return err
			}
			if c >= len(cols) {
				return errRows
			}
			if err := set(p, cols[c], b[start:end]); err != nil {
				return err
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return errRows
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return errRows
			}
			i++
		}
		if err := fn(p); err != nil {
			return err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return errRows
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			return errRows
		}
		i = skipSpace(b, i+1)
	}
}

// set stores one value of a row in p.
func set(p *Point, c column, v []byte) error {
	if string(v) == "null" {
		return nil
	}
	number := v[0] == '-' || (v[0] >= '0' && v[0] <= '9')
	switch c.kind {
	case colTime:
		t, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("time %s: not nanoseconds", v)
		}
		p.Time = t
		return nil
	case colValue, colDetectionLimit:
		if number {
			if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				if c.kind == colValue {
					p.Value, p.Has = f, p.Has|HasValue
				} else {
					p.DetectionLimit, p.Has = f, p.Has|HasDetectionLimit
				}
				return nil
			}
		}
	case colSeq, colLeafIndex:
		if number {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				if c.kind == colSeq {
					p.Seq, p.Has = n, p.Has|HasSeq
				} else {
					p.LeafIndex, p.Has = n, p.Has|HasLeafIndex
				}
				return nil
			}
		}
	}
	p.Other = append(p.Other, c.name+"="+string(v))
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scalarEnd returns the end of the JSON scalar at b[i:]: a string, a
// number, true, false or null.
func scalarEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errRows
	}
	if b[i] == '"' {
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errRows
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		if b[j] == '[' || b[j] == '{' || b[j] == '"' {
			return 0, errRows
		}
		j++
	}
	if j == i {
		return 0, errRows
	}
	return j, nil
}
