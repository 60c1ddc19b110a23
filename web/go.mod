// The front end is not Go: this file makes web/ a module of its own, so
// that ./... of the main module leaves out node_modules, where npm
// packages may ship Go files of their own.
module github.com/proximity-ve/proximity/web

go 1.26
