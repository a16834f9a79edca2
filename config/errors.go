package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is a configuration error at a place in a file. Its text is
// "FILE:LINE: FIELD.PATH: what was wrong; what was expected", the form
// editors and CI annotations jump to.
type Error struct {
	File  string // the file as it was named to Load, or joined from an include
	Line  int    // 1-based; 0 when the error concerns the whole file
	Field string // dotted path such as connections.site-b.children.net.mode
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// pos is where a value was written; connections and children keep theirs
// so that errors found after decoding can still point at the file.
type pos struct {
	file string
	line int
}

func (p pos) errorf(field, format string, args ...any) *Error {
	return &Error{File: p.file, Line: p.line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// didYouMean returns `; did you mean "x"?` for the nearest candidate within
// a small edit distance, or "; expected one of: a, b, c".
func didYouMean(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(got), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(1, min(3, len(best)/3)) {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	return "; expected one of: " + strings.Join(sorted, ", ")
}

// nearest returns the closest candidate within a small edit distance, or "".
func nearest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, min(3, len(best)/4)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
