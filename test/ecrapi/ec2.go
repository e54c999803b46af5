package ecrapi

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OpDescribeInstances is EC2's DescribeInstances, as counted by Calls.
const OpDescribeInstances = "ec2:DescribeInstances"

// Instance is an EC2 instance the fake holds.
type Instance struct {
	ID        string
	Region    string
	State     string // pending, running, stopping, stopped, shutting-down, terminated
	PrivateIP string // served as given, valid or not
	PublicIP  string
	Tags      map[string]string
}

// SetInstances replaces the instances the fake's EC2 serves.
func (s *Server) SetInstances(is ...Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances = slices.Clone(is)
}

// SetEC2Delay makes every EC2 request wait d before it is answered (or until
// the client gives up), as a slow or overloaded control plane would.
func (s *Server) SetEC2Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ec2Delay = d
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

type ec2Filter struct {
	name   string
	values []string
}

// parseFilters reads Filter.N.Name and Filter.N.Value.M of the query
// protocol.
func parseFilters(form url.Values) ([]ec2Filter, error) {
	var fs []ec2Filter
	for n := 1; ; n++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			return fs, nil
		}
		f := ec2Filter{name: name}
		for m := 1; ; m++ {
			v, ok := form[fmt.Sprintf("Filter.%d.Value.%d", n, m)]
			if !ok {
				break
			}
			f.values = append(f.values, v[0])
		}
		if len(f.values) == 0 {
			return nil, fmt.Errorf("filter %q has no values", name)
		}
		fs = append(fs, f)
	}
}

func (f ec2Filter) match(i Instance) (bool, error) {
	switch {
	case f.name == "instance-state-name":
		return slices.Contains(f.values, i.State), nil
	case strings.HasPrefix(f.name, "tag:"):
		v, ok := i.Tags[f.name[4:]]
		return ok && slices.ContainsFunc(f.values, func(pattern string) bool { return globMatch(pattern, v) }), nil
	case f.name == "tag-key":
		for k := range i.Tags {
			if slices.Contains(f.values, k) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("the filter %q is not served by this fake", f.name)
}

// globMatch matches a filter value as EC2 does: * any run of characters
// (none included), ? exactly one, a backslash escapes the next character.
func globMatch(pattern, s string) bool {
	p, v := []rune(pattern), []rune(s)
	if len(p) == 0 {
		return len(v) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(v); i++ {
			if globMatch(string(p[1:]), string(v[i:])) {
				return true
			}
		}
		return false
	case '?':
		return len(v) > 0 && globMatch(string(p[1:]), string(v[1:]))
	case '\\':
		if len(p) > 1 {
			p = p[1:]
		}
	}
	return len(v) > 0 && v[0] == p[0] && globMatch(string(p[1:]), string(v[1:]))
}

type ec2Item struct {
	InstanceID    string `xml:"instanceId"`
	InstanceState struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	} `xml:"instanceState"`
	PrivateIP string `xml:"privateIpAddress,omitempty"`
	PublicIP  string `xml:"ipAddress,omitempty"`
	Tags      []struct {
		Key   string `xml:"key"`
		Value string `xml:"value"`
	} `xml:"tagSet>item"`
}

type ec2Reservation struct {
	ReservationID string    `xml:"reservationId"`
	OwnerID       string    `xml:"ownerId"`
	Instances     []ec2Item `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName      xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	RequestID    string           `xml:"requestId"`
	Reservations []ec2Reservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

// serveEC2 answers an EC2 query-protocol request (form-encoded, SigV4
// signed for "ec2", XML answers).
func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte) {
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			code, xmlEscape(msg), requestID())
	}
	akid, region, signing, err := s.verify(r, body)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = newError(http.StatusInternalServerError, "InternalError", "%v", err)
		}
		code := ae.code
		if code == "InvalidSignatureException" {
			code = "SignatureDoesNotMatch"
		}
		fail(ae.status, code, ae.message)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(http.StatusBadRequest, "InvalidParameterValue", "the body is not form-encoded")
		return
	}
	if signing != "ec2" || form.Get("Action") != "DescribeInstances" {
		fail(http.StatusBadRequest, "InvalidAction", fmt.Sprintf("the action %q signed for %q is not served by this fake", form.Get("Action"), signing))
		return
	}
	if form.Get("Version") != "2016-11-15" {
		fail(http.StatusBadRequest, "InvalidParameterValue", "unknown Version "+form.Get("Version"))
		return
	}
	call := Call{Op: OpDescribeInstances, AccessKeyID: akid, Region: region, Service: signing, At: time.Now()}
	s.mu.Lock()
	delay := s.ec2Delay
	var inj *injected
	if len(s.fail) > 0 {
		inj = &s.fail[0]
		s.fail = s.fail[1:]
		call.Injected = inj.code
	}
	s.log = append(s.log, call)
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if inj != nil {
		code := inj.code
		if code == "ThrottlingException" {
			code = "RequestLimitExceeded"
		}
		fail(inj.status, code, "injected by the test")
		return
	}
	filters, err := parseFilters(form)
	if err != nil {
		fail(http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	// Paging as EC2 pages a filtered listing: a page is the next MaxResults
	// of the region's instances, filtered afterwards, so a page may hold
	// fewer than MaxResults, or none, and still carry a NextToken.
	size := 0 // no MaxResults: one page, all of them
	if v := form.Get("MaxResults"); v != "" {
		mr, err := strconv.Atoi(v)
		if err != nil || mr < 5 || mr > 1000 {
			fail(http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v))
			return
		}
		size = mr
	}
	from := 0
	if tok := form.Get("NextToken"); tok != "" {
		if from, err = strconv.Atoi(strings.TrimPrefix(tok, "page-")); err != nil || !strings.HasPrefix(tok, "page-") || from < 0 {
			fail(http.StatusBadRequest, "InvalidParameterValue", "Invalid value '"+tok+"' for nextToken")
			return
		}
	}
	s.mu.Lock()
	var inRegion []Instance
	for _, i := range s.instances {
		if i.Region == region {
			inRegion = append(inRegion, i)
		}
	}
	from = min(from, len(inRegion))
	if size == 0 {
		size = len(inRegion)
	}
	to := min(from+size, len(inRegion))
	var matched []Instance
	for _, i := range inRegion[from:to] {
		ok := true
		for _, f := range filters {
			m, err := f.match(i)
			if err != nil {
				s.mu.Unlock()
				fail(http.StatusBadRequest, "InvalidParameterValue", err.Error())
				return
			}
			ok = ok && m
		}
		if ok {
			matched = append(matched, i)
		}
	}
	s.mu.Unlock()
	resp := describeInstancesResponse{RequestID: requestID()}
	for _, i := range matched {
		it := ec2Item{InstanceID: i.ID, PrivateIP: i.PrivateIP, PublicIP: i.PublicIP}
		it.InstanceState.Code, it.InstanceState.Name = stateCodes[i.State], i.State
		keys := make([]string, 0, len(i.Tags))
		for k := range i.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			it.Tags = append(it.Tags, struct {
				Key   string `xml:"key"`
				Value string `xml:"value"`
			}{k, i.Tags[k]})
		}
		resp.Reservations = append(resp.Reservations, ec2Reservation{ReservationID: "r-" + i.ID, OwnerID: "123456789012", Instances: []ec2Item{it}})
	}
	if to < len(inRegion) {
		resp.NextToken = "page-" + strconv.Itoa(to)
	}
	data, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write([]byte(xml.Header))
	w.Write(data)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
