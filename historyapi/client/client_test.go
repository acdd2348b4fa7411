package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

func TestDecodeSeriesList(t *testing.T) {
	want := []v1alpha1.Series{
		{Labels: map[string]string{"pod": "a"}, Points: []v1alpha1.Point{{Timestamp: 1, Value: 2}, {Timestamp: 3, Value: 4}}},
		{Labels: map[string]string{}, Points: []v1alpha1.Point{}, Window: &metav1.Duration{Duration: 180e9}},
	}
	body, err := json.Marshal(v1alpha1.SeriesList{TypeMeta: metav1.TypeMeta{Kind: "SeriesList", APIVersion: "x"}, Series: want})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSeriesList(bytes.NewReader(body))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{`[]`, `{"series":{}}`, `{"series":[{"points":"x"}]}`, `{"series":[`} {
		if _, err := decodeSeriesList(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if got, err := decodeSeriesList(strings.NewReader(`{"kind":"SeriesList","series":null}`)); err != nil || len(got) != 0 {
		t.Errorf("null series: %v, %v", got, err)
	}
}
