package forecast

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"sigs.k8s.io/yaml"
)

// Model directory format, version 2 (FormatVersion). A model is a directory holding:
//
//	manifest.json          {"format": "kapacity-sntsf", "version": 2}; read first, rejects other versions
//	estimator_config.yaml  the Config (reference field names), the time features and the network shape
//	item2id.json           series ID -> embedding row, as the reference's item2id.json
//	weights.bin            "KSNW", uint32 version, uint32 tensor count, then per tensor: uint16 name length,
//	                       name, uint32 rows, uint32 cols, rows·cols float32; then the CRC-32 (IEEE) of all
//	                       preceding bytes. Little-endian throughout.
//	series.json            per series ID, the SeriesInfo: the method chosen on validation, every
//	                       candidate's validation error, the scale floor, non-negativity, quantile spreads
//
// Version 1 (no quantile heads, no series.json: the network forecasts every series) still loads.
// Weights are float32 on disk (half the size of float64); Train rounds them before returning, so a reloaded
// model predicts exactly what the trained one did.
const (
	FormatName    = "kapacity-sntsf"
	FormatVersion = 2

	manifestFile = "manifest.json"
	configFile   = "estimator_config.yaml"
	seriesFile   = "item2id.json"
	weightsFile  = "weights.bin"
	infoFile     = "series.json"
	weightsMagic = "KSNW"
)

type manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

type fileConfig struct {
	Config
	Model        string        `json:"model"`
	TimeFeatures []TimeFeature `json:"timeFeatures"`
	Arch         Arch          `json:"arch"`
}

// Save writes the model directory dir (created if needed; existing model files are replaced).
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	man, _ := json.MarshalIndent(manifest{Format: FormatName, Version: FormatVersion}, "", "  ")
	cfg, err := yaml.Marshal(fileConfig{Config: m.Config, Model: "Fcnet", TimeFeatures: m.Features, Arch: m.net.arch})
	if err != nil {
		return fmt.Errorf("save model: encode config: %w", err)
	}
	series, _ := json.MarshalIndent(m.Series, "", "  ")
	info, err := json.Marshal(m.Info)
	if err != nil {
		return fmt.Errorf("save model: encode %s: %w", infoFile, err)
	}
	files := []struct {
		name string
		data []byte
	}{{configFile, cfg}, {seriesFile, series}, {infoFile, info}, {weightsFile, encodeWeights(m.net)}, {manifestFile, man}}
	// The manifest goes last: a directory without one is an incomplete save, not a model.
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	return nil
}

// Load reads a model directory written by Save.
func Load(dir string) (*Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w (not a model directory written by this version of kapacity?)", dir, err)
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("load model %s: parse %s: %w", dir, manifestFile, err)
	}
	if man.Format != FormatName || man.Version < 1 || man.Version > FormatVersion {
		return nil, fmt.Errorf("load model %s: format %q version %d is not supported (this build reads %q version %d); retrain the model with `kapacity train`",
			dir, man.Format, man.Version, FormatName, FormatVersion)
	}
	raw, err = os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	var fc fileConfig
	if err := yaml.UnmarshalStrict(raw, &fc); err != nil {
		return nil, fmt.Errorf("load model %s: parse %s: %w", dir, configFile, err)
	}
	step, err := ParseFreq(fc.Freq)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	if want := TimeFeaturesFor(step); !reflect.DeepEqual(want, fc.TimeFeatures) {
		return nil, fmt.Errorf("load model %s: time features %v do not match freq %s (%v)", dir, fc.TimeFeatures, fc.Freq, want)
	}
	m := &Model{Config: fc.Config, Features: fc.TimeFeatures, step: step}
	raw, err = os.ReadFile(filepath.Join(dir, seriesFile))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &m.Series); err != nil {
		return nil, fmt.Errorf("load model %s: parse %s: %w", dir, seriesFile, err)
	}
	if len(m.Series) != fc.Arch.NumSeries {
		return nil, fmt.Errorf("load model %s: %s has %d series, the network %d", dir, seriesFile, len(m.Series), fc.Arch.NumSeries)
	}
	for id, i := range m.Series {
		if i < 0 || i >= fc.Arch.NumSeries {
			return nil, fmt.Errorf("load model %s: series %q has row %d out of range", dir, id, i)
		}
	}
	if man.Version >= 2 {
		if raw, err = os.ReadFile(filepath.Join(dir, infoFile)); err != nil {
			return nil, fmt.Errorf("load model %s: %w", dir, err)
		}
		if err := json.Unmarshal(raw, &m.Info); err != nil {
			return nil, fmt.Errorf("load model %s: parse %s: %w", dir, infoFile, err)
		}
		for id, in := range m.Info {
			if _, ok := m.Series[id]; !ok || in == nil {
				return nil, fmt.Errorf("load model %s: %s: series %q is not in %s", dir, infoFile, id, seriesFile)
			}
			if !containsString(Methods, in.Method) {
				return nil, fmt.Errorf("load model %s: %s: series %q: unknown method %q", dir, infoFile, id, in.Method)
			}
			if len(in.Spread) != 0 && len(in.Spread) != len(fc.Arch.Quantiles) {
				return nil, fmt.Errorf("load model %s: %s: series %q: %d spreads for %d quantiles", dir, infoFile, id, len(in.Spread), len(fc.Arch.Quantiles))
			}
		}
	}
	for _, q := range fc.Arch.Quantiles {
		if !(q > 0 && q < 1) {
			return nil, fmt.Errorf("load model %s: quantile head %g is not in (0, 1)", dir, q)
		}
	}
	raw, err = os.ReadFile(filepath.Join(dir, weightsFile))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	if m.net, err = decodeWeights(raw, fc.Arch); err != nil {
		return nil, fmt.Errorf("load model %s: %s: %w", dir, weightsFile, err)
	}
	return m, nil
}

func encodeWeights(n *network) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(weightsMagic)
	ts := n.tensors()
	b.Write(le.AppendUint32(nil, FormatVersion))
	b.Write(le.AppendUint32(nil, uint32(len(ts))))
	for _, t := range ts {
		b.Write(le.AppendUint16(nil, uint16(len(t.name))))
		b.WriteString(t.name)
		b.Write(le.AppendUint32(nil, uint32(t.rows)))
		b.Write(le.AppendUint32(nil, uint32(t.cols)))
		buf := make([]byte, 4*len(t.data))
		for i, v := range t.data {
			le.PutUint32(buf[4*i:], math.Float32bits(float32(v)))
		}
		b.Write(buf)
	}
	b.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))
	return b.Bytes()
}

var errTruncated = errors.New("truncated file")

func decodeWeights(raw []byte, a Arch) (*network, error) {
	le := binary.LittleEndian
	if len(raw) < 16 || string(raw[:4]) != weightsMagic {
		return nil, errors.New("not a weights file (bad magic)")
	}
	body, sum := raw[:len(raw)-4], le.Uint32(raw[len(raw)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is corrupt")
	}
	if v := le.Uint32(body[4:]); v < 1 || v > FormatVersion {
		return nil, fmt.Errorf("weights version %d is not supported (want %d)", v, FormatVersion)
	}
	n := newNetwork(a)
	ts := n.tensors()
	if c := int(le.Uint32(body[8:])); c != len(ts) {
		return nil, fmt.Errorf("%d tensors, the configured network has %d", c, len(ts))
	}
	p := body[12:]
	for _, t := range ts {
		if len(p) < 2 {
			return nil, errTruncated
		}
		l := int(le.Uint16(p))
		if len(p) < 2+l+8 {
			return nil, errTruncated
		}
		name := string(p[2 : 2+l])
		rows, cols := int(le.Uint32(p[2+l:])), int(le.Uint32(p[6+l:]))
		p = p[10+l:]
		if name != t.name || rows != t.rows || cols != t.cols {
			return nil, fmt.Errorf("tensor %s %dx%d does not match the configured %s %dx%d", name, rows, cols, t.name, t.rows, t.cols)
		}
		if len(p) < 4*rows*cols {
			return nil, errTruncated
		}
		for i := range t.data {
			t.data[i] = float64(math.Float32frombits(le.Uint32(p[4*i:])))
		}
		p = p[4*rows*cols:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(p))
	}
	return n, nil
}
