package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Location is where a broadcast is, coarsely, when its broadcaster chose
// to say: a point the directory keeps rounded to a tenth of a degree
// (about 11 km), enough for a map of the world and no closer. It is an
// optional field of a listing (added after the first listings, which have
// none): old nodes ignore it, and a listing without it is as valid as
// before. The signature of a ListingUpdate covers its whole body, so the
// location is the broadcaster's as much as the title is.
type Location struct {
	Lat float64 `json:"lat"` // −90 (south) to 90 (north)
	Lon float64 `json:"lon"` // −180 (west) to 180 (east)
}

// ParseLocation reads "LAT,LON" in decimal degrees ("48.85,2.35"), as
// `peerscope broadcast --location` and a WHIP publisher give it, checked
// and rounded (Coarse).
func ParseLocation(s string) (Location, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return Location{}, fmt.Errorf("%w: location %q: write it as LAT,LON in degrees, say 48.85,2.35", ErrBadRequest, clip(s, 40))
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil {
		return Location{}, fmt.Errorf("%w: location %q: latitude and longitude must be numbers (LAT,LON in degrees, say 48.85,2.35)", ErrBadRequest, clip(s, 40))
	}
	l := Location{Lat: lat, Lon: lon}
	if err := l.Check(); err != nil {
		return Location{}, err
	}
	return l.Coarse(), nil
}

// Check refuses (with ErrBadRequest) a point off the map.
func (l Location) Check() error {
	switch {
	case math.IsNaN(l.Lat) || l.Lat < -90 || l.Lat > 90:
		return fmt.Errorf("%w: location: latitude %g is not between -90 and 90", ErrBadRequest, l.Lat)
	case math.IsNaN(l.Lon) || l.Lon < -180 || l.Lon > 180:
		return fmt.Errorf("%w: location: longitude %g is not between -180 and 180", ErrBadRequest, l.Lon)
	}
	return nil
}

// UnmarshalJSON takes {"lat": N, "lon": N}: both numbers, present (a
// missing or null one is not the equator or Greenwich), and on the map.
func (l *Location) UnmarshalJSON(b []byte) error {
	var v struct {
		Lat *float64 `json:"lat"`
		Lon *float64 `json:"lon"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Lat == nil || v.Lon == nil {
		return fmt.Errorf("%w: location: both lat and lon, in degrees", ErrBadRequest)
	}
	p := Location{Lat: *v.Lat, Lon: *v.Lon}
	if err := p.Check(); err != nil {
		return err
	}
	*l = p
	return nil
}

// Coarse is l rounded to a tenth of a degree, what the directory keeps.
func (l Location) Coarse() Location {
	r := func(f float64) float64 { return math.Round(f*10) / 10 }
	return Location{Lat: r(l.Lat), Lon: r(l.Lon)}
}

// String is "LAT,LON", as ParseLocation reads it.
func (l Location) String() string {
	return strconv.FormatFloat(l.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(l.Lon, 'f', -1, 64)
}
