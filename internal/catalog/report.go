package catalog

// ImportResult is what reading one catalog source gives: the entries that
// passed validation, and a problem for every entry that was rejected or
// kept in a degraded form. One bad entry never stops the others.
type ImportResult struct {
	// Entries are the entries kept, each passing Validate.
	Entries []Entry `json:"entries"`
	// Problems are the rejections and degradations, in the order met.
	Problems []Problem `json:"problems"`
}

// Problem is one rejection or degradation of an entry of a source.
type Problem struct {
	// ID is the entry's id, when it is known.
	ID string `json:"id"`
	// File is the file of the source the problem is in.
	File string `json:"file"`
	// Field is the field (or the part of the file) at fault.
	Field string `json:"field"`
	// Reason says what is wrong; for an entry that was kept, what was
	// changed.
	Reason string `json:"reason"`
	// Rejected is true when the entry was left out; false means it was
	// kept, degraded, and Reason says what was changed.
	Rejected bool `json:"rejected"`
}
