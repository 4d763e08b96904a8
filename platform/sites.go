package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
)

// siteDirectory lists the sampling sites residents can follow: those of a
// sites file (names, service areas, CAP geocodes) and, for sites the file
// does not describe, every site with an enrolled device, named by its id.
type siteDirectory struct {
	described []notice.Site
	devices   interface{ Devices() []tapproof.Device }
}

func newSiteDirectory(path string, devices interface{ Devices() []tapproof.Device }) (*siteDirectory, error) {
	d := &siteDirectory{devices: devices}
	if path == "" {
		return d, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sites file: %w", err)
	}
	if err := json.Unmarshal(b, &d.described); err != nil {
		return nil, fmt.Errorf("sites file %s: %w", path, err)
	}
	for _, s := range d.described {
		if !tapproof.ValidID(s.Utility) || !tapproof.ValidID(s.ID) {
			return nil, fmt.Errorf("sites file %s: site %q of %q: ids must be lower-case letters, digits and hyphens", path, s.ID, s.Utility)
		}
	}
	return d, nil
}

// Sites returns the described sites, then the others that have devices.
func (d *siteDirectory) Sites(context.Context) ([]notice.Site, error) {
	out := append([]notice.Site(nil), d.described...)
	seen := map[[2]string]bool{}
	for _, s := range d.described {
		seen[[2]string{s.Utility, s.ID}] = true
	}
	for _, dev := range d.devices.Devices() {
		k := [2]string{dev.Utility, dev.Site}
		if !seen[k] {
			seen[k] = true
			out = append(out, notice.Site{Utility: dev.Utility, ID: dev.Site, Name: dev.Site})
		}
	}
	return out, nil
}
