package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: any file content gives a configuration or an error that names
// the file, never a panic.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/broken/*.yaml")
	seeds = append(seeds, "../examples/petrel.yaml", "testdata/include/main.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "include") || strings.Contains(text, "file") {
			t.Skip() // keep the fuzzer off the file system
		}
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != p {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		if _, err := cfg.IKEConnections(); err != nil {
			t.Fatalf("loaded but does not convert: %v", err)
		}
	})
}
