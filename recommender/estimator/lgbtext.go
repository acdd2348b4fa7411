package estimator

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// fmtFloat writes a float the way LightGBM does for model values: shortest round-trip text.
func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmtFloat(x)
	}
	return strings.Join(s, " ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

// treeString is LightGBM's Tree::ToString for numeric trees, preceded by "Tree=i" and followed by the
// blank line that GBDT::SaveModelToString adds; tree_sizes counts exactly these bytes.
func (t *Tree) treeString(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tree=%d\n", i)
	fmt.Fprintf(&b, "num_leaves=%d\nnum_cat=0\n", t.NumLeaves)
	fmt.Fprintf(&b, "split_feature=%s\n", joinInts(t.SplitFeature))
	fmt.Fprintf(&b, "split_gain=%s\n", joinFloats(t.SplitGain))
	fmt.Fprintf(&b, "threshold=%s\n", joinFloats(t.Threshold))
	fmt.Fprintf(&b, "decision_type=%s\n", joinInts(t.DecisionType))
	fmt.Fprintf(&b, "left_child=%s\n", joinInts(t.LeftChild))
	fmt.Fprintf(&b, "right_child=%s\n", joinInts(t.RightChild))
	fmt.Fprintf(&b, "leaf_value=%s\n", joinFloats(t.LeafValue))
	fmt.Fprintf(&b, "leaf_weight=%s\n", joinFloats(t.LeafWeight))
	fmt.Fprintf(&b, "leaf_count=%s\n", joinInts(t.LeafCount))
	fmt.Fprintf(&b, "internal_value=%s\n", joinFloats(t.InternalValue))
	fmt.Fprintf(&b, "internal_weight=%s\n", joinFloats(t.InternalWeight))
	fmt.Fprintf(&b, "internal_count=%s\n", joinInts(t.InternalCount))
	fmt.Fprintf(&b, "is_linear=0\nshrinkage=%s\n\n\n", fmtFloat(t.Shrinkage))
	return b.String()
}

// WriteLightGBM writes the booster in LightGBM's text model format (version v3, objective regression), which
// LightGBM's Booster(model_file=…) and lgb.Booster.model_from_string load.
func (b *Booster) WriteLightGBM(w io.Writer) error {
	trees := make([]string, len(b.Trees))
	sizes := make([]int, len(b.Trees))
	for i := range b.Trees {
		trees[i] = b.Trees[i].treeString(i)
		sizes[i] = len(trees[i])
	}
	infos := b.FeatureInfos
	if len(infos) != b.NumFeatures {
		infos = make([]string, b.NumFeatures)
		for i := range infos {
			infos[i] = "none"
		}
	}
	var s strings.Builder
	s.WriteString("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n")
	fmt.Fprintf(&s, "max_feature_idx=%d\nobjective=regression\n", b.NumFeatures-1)
	fmt.Fprintf(&s, "feature_names=%s\nfeature_infos=%s\n", strings.Join(b.FeatureNames, " "), strings.Join(infos, " "))
	fmt.Fprintf(&s, "tree_sizes=%s\n\n", joinInts(sizes))
	for _, t := range trees {
		s.WriteString(t)
	}
	s.WriteString("end of trees\n\npandas_categorical:null\n")
	if _, err := io.WriteString(w, s.String()); err != nil {
		return fmt.Errorf("write lightgbm model: %w", err)
	}
	return nil
}

// ParseLightGBM reads a LightGBM text model with numeric splits (regression; one tree per iteration).
// Categorical splits, linear trees and multi-class models are rejected with an error.
func ParseLightGBM(r io.Reader) (*Booster, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	b := &Booster{}
	var cur map[string]string
	var blocks []map[string]string
	header := map[string]string{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "end of trees" {
			break
		}
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // "tree" magic line
		}
		if k == "Tree" {
			cur = map[string]string{}
			blocks = append(blocks, cur)
			continue
		}
		if cur != nil {
			cur[k] = v
		} else {
			header[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read lightgbm model: %w", err)
	}
	if v := header["num_tree_per_iteration"]; v != "" && v != "1" {
		return nil, fmt.Errorf("lightgbm model: num_tree_per_iteration=%s, only single-output regression models are supported", v)
	}
	mfi, err := strconv.Atoi(header["max_feature_idx"])
	if err != nil {
		return nil, fmt.Errorf("lightgbm model: bad max_feature_idx %q", header["max_feature_idx"])
	}
	if obj := header["objective"]; obj != "" && !strings.HasPrefix(obj, "regression") {
		return nil, fmt.Errorf("lightgbm model: objective %q is not supported (want regression)", obj)
	}
	b.NumFeatures = mfi + 1
	b.FeatureNames = strings.Fields(header["feature_names"])
	b.FeatureInfos = strings.Fields(header["feature_infos"])
	for i, blk := range blocks {
		t, err := parseTree(blk, b.NumFeatures)
		if err != nil {
			return nil, fmt.Errorf("lightgbm model: tree %d: %w", i, err)
		}
		b.Trees = append(b.Trees, t)
	}
	return b, nil
}

func parseTree(kv map[string]string, numFeatures int) (Tree, error) {
	var t Tree
	var err error
	if t.NumLeaves, err = strconv.Atoi(kv["num_leaves"]); err != nil || t.NumLeaves < 1 {
		return t, fmt.Errorf("bad num_leaves %q", kv["num_leaves"])
	}
	if kv["num_cat"] != "" && kv["num_cat"] != "0" {
		return t, fmt.Errorf("categorical splits (num_cat=%s) are not supported", kv["num_cat"])
	}
	if kv["is_linear"] != "" && kv["is_linear"] != "0" {
		return t, fmt.Errorf("linear trees are not supported")
	}
	if t.LeafValue, err = floatsOf(kv, "leaf_value", t.NumLeaves); err != nil {
		return t, err
	}
	t.Shrinkage = 1
	if s := kv["shrinkage"]; s != "" {
		if t.Shrinkage, err = strconv.ParseFloat(s, 64); err != nil {
			return t, fmt.Errorf("bad shrinkage %q", s)
		}
	}
	if t.NumLeaves == 1 {
		return t, nil
	}
	ni := t.NumLeaves - 1
	if t.SplitFeature, err = intsOf(kv, "split_feature", ni); err != nil {
		return t, err
	}
	if t.Threshold, err = floatsOf(kv, "threshold", ni); err != nil {
		return t, err
	}
	if t.DecisionType, err = intsOf(kv, "decision_type", ni); err != nil {
		return t, err
	}
	if t.LeftChild, err = intsOf(kv, "left_child", ni); err != nil {
		return t, err
	}
	if t.RightChild, err = intsOf(kv, "right_child", ni); err != nil {
		return t, err
	}
	// Optional statistics: kept when present so a re-written model keeps them.
	t.SplitGain, _ = floatsOf(kv, "split_gain", ni)
	t.LeafWeight, _ = floatsOf(kv, "leaf_weight", t.NumLeaves)
	t.LeafCount, _ = intsOf(kv, "leaf_count", t.NumLeaves)
	t.InternalValue, _ = floatsOf(kv, "internal_value", ni)
	t.InternalWeight, _ = floatsOf(kv, "internal_weight", ni)
	t.InternalCount, _ = intsOf(kv, "internal_count", ni)
	for i := 0; i < ni; i++ {
		if t.DecisionType[i]&decisionCategorical != 0 {
			return t, fmt.Errorf("node %d: categorical split is not supported", i)
		}
		if f := t.SplitFeature[i]; f < 0 || f >= numFeatures {
			return t, fmt.Errorf("node %d: split feature %d out of range", i, f)
		}
		for _, c := range []int{t.LeftChild[i], t.RightChild[i]} {
			if c >= ni || ^c >= t.NumLeaves || (c > 0 && c <= i) {
				return t, fmt.Errorf("node %d: child %d out of range", i, c)
			}
		}
	}
	return t, nil
}

func floatsOf(kv map[string]string, key string, n int) ([]float64, error) {
	f := strings.Fields(kv[key])
	if len(f) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(f), n)
	}
	out := make([]float64, n)
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[i] = v
	}
	return out, nil
}

func intsOf(kv map[string]string, key string, n int) ([]int, error) {
	f := strings.Fields(kv[key])
	if len(f) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(f), n)
	}
	out := make([]int, n)
	for i, s := range f {
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[i] = v
	}
	return out, nil
}
