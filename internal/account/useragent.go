package account

import "strings"

// BrowserSummary names the browser and system of a User-Agent header in a
// few words for the sessions list: "Firefox on Linux", "Safari on iPhone".
// What it cannot tell is "Unknown browser".
func BrowserSummary(ua string) string {
	browser := firstMatch(ua, []nameMatch{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome", "Headless Chrome"},
		{"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	})
	system := firstMatch(ua, []nameMatch{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	})
	switch {
	case browser == "" && system == "":
		return "Unknown browser"
	case browser == "":
		return "A browser on " + system
	case system == "":
		return browser
	}
	return browser + " on " + system
}

type nameMatch struct{ token, name string }

func firstMatch(s string, ms []nameMatch) string {
	for _, m := range ms {
		if strings.Contains(s, m.token) {
			return m.name
		}
	}
	return ""
}
