package estimator

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/dmitryikh/leaves"
)

// Predictor is a loaded LightGBM model ready to predict: the declared predictor of the residual model is
// github.com/dmitryikh/leaves, which reads LightGBM's text format. The trainer in this package writes
// that format; loading every model through it (rather than predicting with the trainer's own trees) is
// what proves that a model trained by LightGBM itself would load and predict the same way.
type Predictor struct {
	ens *leaves.Ensemble
}

// LoadLightGBM reads a LightGBM text model (numeric splits, regression) into a Predictor.
func LoadLightGBM(model []byte) (*Predictor, error) {
	ens, err := leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(model)), false)
	if err != nil {
		return nil, fmt.Errorf("load lightgbm model: %w", err)
	}
	return &Predictor{ens: ens}, nil
}

// NewPredictor writes b in LightGBM's format and loads it back through leaves.
func NewPredictor(b *Booster) (*Predictor, error) {
	var buf bytes.Buffer
	if err := b.WriteLightGBM(&buf); err != nil {
		return nil, err
	}
	return LoadLightGBM(buf.Bytes())
}

// Predict is the model's raw output at x (all trees).
func (p *Predictor) Predict(x []float64) float64 { return p.ens.PredictSingle(x, 0) }

// NumFeatures is the number of features the model reads.
func (p *Predictor) NumFeatures() int { return p.ens.NFeatures() }
