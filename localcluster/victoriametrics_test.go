package localcluster

import (
	"strings"
	"testing"
)

func TestToPrometheusText(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{
			name: "seconds become milliseconds, comments and EOF go",
			in:   "# TYPE x counter\nx_total{pod=\"a\"} 1.5 1700000000\nx_total{pod=\"b\"} 2 1700000000.25\n# EOF\n",
			want: "x_total{pod=\"a\"} 1.5 1700000000000\nx_total{pod=\"b\"} 2 1700000000250\n",
		},
		{name: "no timestamp", in: "x 1\n", wantErr: "without a timestamp"},
		{name: "no value", in: "x\n", wantErr: "without a value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := toPrometheusText(strings.NewReader(tc.in), &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}
