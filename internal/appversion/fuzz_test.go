package appversion

import (
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// reference is the rule of the package comment written out a second way
// (regular expressions and big integers), to compare Compare against.
func reference(a, b string) int {
	ar, ap := refSplit(a)
	br, bp := refSplit(b)
	as, bs := strings.Split(ar, "."), strings.Split(br, ".")
	for len(as) < len(bs) {
		as = append(as, "0")
	}
	for len(bs) < len(as) {
		bs = append(bs, "0")
	}
	for i := range as {
		if c := refNatural(orZero(as[i]), orZero(bs[i])); c != 0 {
			return c
		}
	}
	switch {
	case ap == "" && bp == "":
		return 0
	case ap == "":
		return 1
	case bp == "":
		return -1
	}
	xs, ys := strings.Split(ap, "."), strings.Split(bp, ".")
	for i := 0; i < len(xs) && i < len(ys); i++ {
		xn, yn := refNumber(xs[i]), refNumber(ys[i])
		var c int
		switch {
		case xn != nil && yn != nil:
			c = xn.Cmp(yn)
		case xn != nil:
			c = -1
		case yn != nil:
			c = 1
		default:
			c = strings.Compare(xs[i], ys[i])
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(xs) - len(ys))
}

var (
	leadingV = regexp.MustCompile(`^[vV]([0-9])`)
	runs     = regexp.MustCompile(`[0-9]+|[^0-9]+`)
	digits   = regexp.MustCompile(`^[0-9]+$`)
)

func refSplit(v string) (release, pre string) {
	v, _, _ = strings.Cut(strings.TrimSpace(v), "+")
	v = leadingV.ReplaceAllString(v, "$1")
	release, pre, _ = strings.Cut(v, "-")
	return release, pre
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func refNumber(s string) *big.Int {
	if !digits.MatchString(s) {
		return nil
	}
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

// refNatural: runs of digits compare as numbers, other runs as text
// (byte order), a number before a word; a prefix first.
func refNatural(a, b string) int {
	xs, ys := runs.FindAllString(a, -1), runs.FindAllString(b, -1)
	for i := 0; i < len(xs) && i < len(ys); i++ {
		xn, yn := refNumber(xs[i]), refNumber(ys[i])
		var c int
		switch {
		case xn != nil && yn != nil:
			c = xn.Cmp(yn)
		case xn != nil:
			c = -1
		case yn != nil:
			c = 1
		default:
			c = strings.Compare(xs[i], ys[i])
		}
		if c != 0 {
			return c
		}
	}
	return sign(len(xs) - len(ys))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// FuzzCompare: Compare agrees with the documented rule written out
// independently, is a total preorder (reflexive, antisymmetric,
// transitive, and versions it calls equal compare alike against any
// third), and Newer is Compare > 0 except that an empty version is never
// newer or older.
func FuzzCompare(f *testing.F) {
	for _, s := range [][3]string{
		{"1.2.3", "1.2.4", "1.10"}, {"v1.2", "1.2.0", "V1.2+b"}, {"2024.07.0", "2024.7", "2024.10.1"},
		{"1.0.0-rc.1", "1.0.0", "1.0.0-rc.10"}, {"1.0.0-alpha", "1.0.0-1", "1.0.0-alpha.1"},
		{"16-alpine", "15-alpine", "16"}, {"1.2a", "1.2b", "1.3"}, {"rc9", "rc10", "rc"},
		{"2.0beta", "2.0alpha", "2.0"}, {"", " ", "0"}, {"1..2", "1.0.2", "1.-"}, {"007", "7", "v007"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if want := reference(a, b); ab != want {
			t.Fatalf("Compare(%q, %q) = %d, the documented rule says %d", a, b, ab, want)
		}
		if ab < -1 || ab > 1 || ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) = %d", a, Compare(a, a))
		}
		ac, bc := Compare(a, c), Compare(b, c)
		if ab == 0 && ac != bc {
			t.Fatalf("%q equals %q but they compare %d and %d with %q", a, b, ac, bc, c)
		}
		if ab <= 0 && bc <= 0 && ac > 0 || ab >= 0 && bc >= 0 && ac < 0 {
			t.Fatalf("not transitive: %q %d %q, %q %d %q, %q %d %q", a, ab, b, b, bc, c, a, ac, c)
		}
		empty := strings.TrimSpace(a) == "" || strings.TrimSpace(b) == ""
		if n := Newer(a, b); n != (!empty && ab > 0) {
			t.Fatalf("Newer(%q, %q) = %v with Compare %d", a, b, n, ab)
		}
	})
}
