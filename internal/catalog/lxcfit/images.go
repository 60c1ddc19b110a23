// Images: only pinned tags, and the version a tag names.

package lxcfit

import (
	"fmt"
	"regexp"
	"strings"
)

// movingTags name whatever is newest, not one version.
var movingTags = map[string]bool{"latest": true, "stable": true, "main": true, "master": true, "nightly": true,
	"edge": true, "dev": true, "develop": true, "beta": true, "alpha": true, "rolling": true, "release": true,
	"lts": true, "current": true, "testing": true, "unstable": true, "preview": true, "canary": true, "next": true}

// unpinned says why image does not name one version, or "".
func unpinned(image string) string {
	if image == "" {
		return "no image"
	}
	if strings.ContainsAny(image, "${} \t\n") {
		return fmt.Sprintf("the image %q is not a plain reference", image)
	}
	name, digest, hasDigest := strings.Cut(image, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	if hasDigest && strings.HasPrefix(digest, "sha256:") && tag != "" {
		return ""
	}
	if tag == "" {
		return fmt.Sprintf("the image %q names no tag (pinned images only)", image)
	}
	if movingTags[strings.ToLower(tag)] {
		return fmt.Sprintf("the image %q names the moving tag %q, not a version (pinned images only)", image, tag)
	}
	return ""
}

var versionTagRE = regexp.MustCompile(`^v[0-9]`)

func imageVersion(image string) string {
	name, _, _ := strings.Cut(image, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	if versionTagRE.MatchString(tag) {
		tag = tag[1:]
	}
	return tag
}
