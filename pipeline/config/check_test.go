package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every broken configuration of testdata/broken names each of its problems
// ("# want:" lines) with its YAML path, and nothing else.
func TestCheckBrokenCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d broken configurations", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, l := range strings.Split(string(b), "\n") {
				if w, ok := strings.CutPrefix(l, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			_, ps := Check(b)
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			for _, w := range wants {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no problem says %q; got:\n  %s", w, strings.Join(got, "\n  "))
				}
			}
			if len(got) != len(wants) {
				t.Errorf("%d problems, want %d:\n  %s", len(got), len(wants), strings.Join(got, "\n  "))
			}
		})
	}
}

// The shipped configurations are valid.
func TestCheckShippedConfigurations(t *testing.T) {
	for _, f := range []string{"../../deployments/local/gdexport.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, ps := Check(b); len(ps) > 0 {
			t.Errorf("%s: %v", f, ps)
		}
	}
}
