package interop

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	teardown := Setup()
	code := m.Run()
	teardown()
	os.Exit(code)
}
