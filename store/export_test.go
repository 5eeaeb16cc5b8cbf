package store

// SetTestHookAfter makes d run hook after each publish step; an error from
// hook stops the publish there, as a crash would.
func SetTestHookAfter(d *Dir, hook func(step string) error) { d.testHookAfter = hook }

// DocSuffixes is the document allow-list.
var DocSuffixes = docSuffixes

// AllSuffixes lists every file suffix of a version.
func AllSuffixes() []string { return append(allSuffixes(), stateSuffixes...) }

// ParseList is the tolerant list parser.
var ParseList = parseList

const MaxList = maxList
