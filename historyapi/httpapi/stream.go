package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// WriteSeriesList writes a SeriesList exactly as encoding/json would, but series by series
// through a small buffer: json.Encoder builds the whole document in memory first, which for an
// answer at the sample bound (--history-max-samples) is several times the points themselves.
func WriteSeriesList(w io.Writer, series []v1alpha1.Series) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"kind":"`+v1alpha1.SeriesListKind+`","apiVersion":"`...)
	buf = append(buf, v1alpha1.SchemeGroupVersion.String()...)
	buf = append(buf, `","series":[`...)
	for i, s := range series {
		if i > 0 {
			buf = append(buf, ',')
		}
		labels, err := json.Marshal(s.Labels)
		if err != nil {
			return err
		}
		buf = append(buf, `{"labels":`...)
		buf = append(buf, labels...)
		buf = append(buf, `,"points":`...)
		if s.Points == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, '[')
			for j, p := range s.Points {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, `{"timestamp":`...)
				buf = strconv.AppendInt(buf, p.Timestamp, 10)
				buf = append(buf, `,"value":`...)
				buf = p.Value.AppendJSON(buf)
				buf = append(buf, '}')
				if len(buf) > 32<<10 {
					if _, err := bw.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			buf = append(buf, ']')
		}
		if s.Window != nil {
			window, err := json.Marshal(s.Window)
			if err != nil {
				return err
			}
			buf = append(buf, `,"window":`...)
			buf = append(buf, window...)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "]}\n"...)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}
