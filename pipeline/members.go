package pipeline

// CommitMember says what a member's commit flow counts for, as of the last
// Compile: the flow's cookie (kind KindMember) names the group and its VIP
// port, the member index it matches (RegMember) the member. It returns the
// group's name and the indexes of the port and of the member in the
// group's document; ok is false for a flow the last Compile did not make.
// Not for concurrent use with Compile.
func (k *Compiler) CommitMember(cookie uint64, index uint16) (group string, port, member int, ok bool) {
	if cookie&CookieKindMask != Cookie(KindMember, 0, 0) || uint16(cookie) == 0 {
		return "", 0, 0, false
	}
	name, ok := k.ids.name(CookieService(cookie))
	if !ok {
		return "", 0, 0, false
	}
	lay := k.layouts[name]
	if lay == nil {
		return "", 0, 0, false
	}
	for i, x := range lay.idx {
		if x == index {
			return name, int(uint16(cookie)) - 1, i, true
		}
	}
	return "", 0, 0, false
}
