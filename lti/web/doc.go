// Package web is the browser side of LTI: the pages, cookies, Content
// Security Policy and templates of the hub's LTI endpoints.
// Its handlers only translate between HTTP and the HTTP-free core in
// package lti: a login (lti.Tool.Login), a launch (Admit, then Unbound when
// the browser lost its binding), the deep linking picker (StartPicker,
// ResumePicker, AnswerPicker) and dynamic registration
// (OpenRegistrationLink, Register). A refusal becomes a readable page
// showing the reason code and the request id as reference; the detail goes
// to the log only. What a request carries is passed on as plain values: a
// launch's Origin header, for one, which the launch pipeline checks (a
// secret from platform storage is accepted only from the hub's own page).
//
// Every page runs inside the LMS's frame and allows only its own inline
// script. Login cookies are SameSite=None, to survive the platform's
// cross-site form post; where a browser drops them in a frame, platform
// storage or a new window takes over (login.go).
package web
