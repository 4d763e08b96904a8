package notice

// Site is a sampling point as residents know it: its name and the service
// area it belongs to, with the area's outline or codes for CAP.
type Site struct {
	Utility string `json:"utility"`
	ID      string `json:"id"`
	// Name is what residents call it, e.g. "Elm Street school".
	Name string `json:"name"`
	// Area is the service area id (a tapproof.ValidID) and AreaName its name.
	Area     string `json:"area,omitempty"`
	AreaName string `json:"area_name,omitempty"`
	// Polygon outlines the area concerned as WGS 84 latitude, longitude
	// pairs; closed (first point equals last), at least 4 points.
	Polygon [][2]float64 `json:"polygon,omitempty"`
	// Geocodes identify the area for CAP, e.g. {"SAME", "026049"}.
	Geocodes []Geocode `json:"geocodes,omitempty"`
}

// Geocode is a CAP geocode: a code system and a value.
type Geocode struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// FindSite returns the site of utility with id from sites.
func FindSite(sites []Site, utility, id string) (*Site, bool) {
	for i := range sites {
		if sites[i].Utility == utility && sites[i].ID == id {
			return &sites[i], true
		}
	}
	return nil, false
}
