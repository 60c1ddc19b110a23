package appversion

import "testing"

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2.3", "1.2.3", 0},
		{"1.2.4", "1.2.3", 1},
		{"1.10.0", "1.9.9", 1},
		{"1.2", "1.2.0", 0},
		{"1.2.0.1", "1.2", 1},
		{"v1.2.3", "1.2.3", 0},
		{"V2", "1.99", 1},
		{"2024.07.0", "2024.7.0", 0},
		{"2024.10.1", "2024.07.0", 1},
		{"2025.01.0", "2024.12.9", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0", "1.0.0-beta", 1},
		{"1.0.0-alpha", "1.0.0-beta", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha", 1},
		{"1.0.0-rc.2", "1.0.0-rc.10", -1},
		{"1.0.0-1", "1.0.0-alpha", -1},
		{"1.0.1-rc.1", "1.0.0", 1},
		{"1.0.0+build.5", "1.0.0", 0},
		{"16-alpine", "15-alpine", 1},
		{"1.2a", "1.2b", -1},
		{"1.2b", "1.3", -1},
		{"rc9", "rc10", -1},
		{"1.2.3", "1.2.x", -1},
		{"123456789012345678901", "123456789012345678900", 1},
		{"007", "7", 0},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d (antisymmetry)", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		candidate, current string
		want               bool
	}{
		{"1.1", "1.0", true},
		{"1.0", "1.1", false},
		{"1.0", "1.0.0", false},
		{"", "1.0", false},
		{"1.0", "", false},
		{" ", "1.0", false},
		{"2024.10.0", "2024.07.0", true},
		{"1.0.0", "1.0.0-rc.3", true},
	} {
		if got := Newer(tc.candidate, tc.current); got != tc.want {
			t.Errorf("Newer(%q, %q) = %v, want %v", tc.candidate, tc.current, got, tc.want)
		}
	}
}

// TestFuzzCompareWordsInReleaseByText: words in a release component
// compare as text, as the natural order says; they were compared by
// length first, so "2.0beta" was older than "2.0alpha" and "1.0b" older
// than "1.0aa" (found by FuzzCompare; the input is in testdata/fuzz).
func TestFuzzCompareWordsInReleaseByText(t *testing.T) {
	for _, tc := range [][2]string{{"2.0alpha", "2.0beta"}, {"1.0aa", "1.0b"}, {"1.rc", "1.zeta"}, {"1.0a9", "1.0b1"}} {
		if got := Compare(tc[0], tc[1]); got != -1 {
			t.Errorf("Compare(%q, %q) = %d, want -1", tc[0], tc[1], got)
		}
		if !Newer(tc[1], tc[0]) {
			t.Errorf("Newer(%q, %q) = false", tc[1], tc[0])
		}
	}
}
