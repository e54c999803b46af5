// Package packer holds the Packer templates and install scripts of dockhand's
// two AMIs (see README.md in this directory). It has no Go code that ships:
// its tests read what the scripts install, the unit files with test/unitfile.
package packer
