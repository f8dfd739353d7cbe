// Version ordering of OS packages, as the package managers themselves order them: dpkg
// (Debian, Ubuntu) and apk (Alpine).
#pragma once

#include <string_view>

namespace wharf::registry {

// <0, 0 or >0 as `a` sorts before, equal to or after `b` under dpkg's rules:
// [epoch:]upstream[-revision], the epoch compared as a number (absent = 0); upstream and revision
// compared by alternating non-digit runs (letters before non-letters, '~' before everything,
// even the end) and digit runs (numerically).
int compare_dpkg_versions(std::string_view a, std::string_view b);

// <0, 0 or >0 under apk's rules: number(.number)*[letter](_suffix[number])*[-r<revision>],
// where the suffixes order _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p,
// and a component after the first with a leading zero compares as a fraction ("1.02" < "1.1").
// Text that does not follow the grammar compares by its remaining characters.
int compare_apk_versions(std::string_view a, std::string_view b);

}  // namespace wharf::registry
