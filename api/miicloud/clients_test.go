package miicloud_test

import (
	"slices"
	"testing"
)

// TestVendorSampleSecondImage: the vendor's own sample enrols several
// photos of one person by posting /miicloud/person again with the same
// customer_person_id; each adds an image (issue 19). Only the very same
// photo again is refused, so a retried upload adds nothing.
func TestVendorSampleSecondImage(t *testing.T) {
	e := newEnv(t)
	img1, img2, img3 := photo(t, "img1.jpg"), photo(t, "img2.jpg"), photo(t, "img4.jpg")
	const id = "1234567"
	m := wantStatus(t, "enroll 001", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", id}, {"first_name", "Will"}, {"last_name", "Smith"}}, curlFile("will_smith_001.jpg", img1)), 200)
	wantKeys(t, "enroll 001", m, enrollKeys...)
	person := m["miicloud_person_id"]

	m = wantStatus(t, "enroll 002", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", id}, {"email", "will@example.org"}}, curlFile("will_smith_002.jpg", img2)), 200)
	wantKeys(t, "enroll 002", m, enrollKeys...)
	wantFields(t, "enroll 002", m, map[string]string{"status": "success", "customer_person_id": id, "first_name": "Will", "last_name": "Smith", "email": "will@example.org"})
	if m["miicloud_person_id"] != person {
		t.Fatalf("enroll 002 made another person: %v, want %v", m["miicloud_person_id"], person)
	}
	box(t, "enroll 002", m["bounding_box"])

	m = wantStatus(t, "get", e.plain(t, "GET", "/miicloud/person/"+id, e.read), 200)
	names := images(t, "get", m["images"])
	if len(names) != 2 || !slices.ContainsFunc(names, func(n string) bool { return len(n) > len("enroll/will_smith_002") && n[:21] == "enroll/will_smith_002" }) {
		t.Fatalf("images %v, want both enrolments", names)
	}

	// The same photo again: 400, nothing added.
	wantFail(t, "enroll 002 again", e.form(t, "POST", "/miicloud/person", e.write, []field{{"customer_person_id", id}}, curlFile("will_smith_002.jpg", img2)), 400)
	if n := images(t, "get", wantStatus(t, "get", e.plain(t, "GET", "/miicloud/person/"+id, e.read), 200)["images"]); len(n) != 2 {
		t.Fatalf("images after the retry: %v", n)
	}

	// A third photo of the same person matches them.
	fs := faces(t, "match", e.form(t, "POST", "/miicloud/match_faces", e.read, nil, curlFile("test_001.jpg", img3)))
	if len(fs) != 1 || fs[0].status != "known" || fs[0].raw["customer_person_id"] != id {
		t.Fatalf("match: %+v", fs)
	}
}
