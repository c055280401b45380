/**
 * Which network addresses an outbound call may connect to: public unicast only, unless the operator's
 * allow-list (`net.allowPrivateDestinations`) names the address. Pure, so the connect-time check and
 * the tests agree on one answer.
 */
import ipaddr from 'ipaddr.js';

export type AllowList = readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];

/** Parses CIDRs (`127.0.0.1/32`, `fd00::/8`); a bare address counts as a single host. */
export function parseAllowList(cidrs: readonly string[]): AllowList {
  return cidrs.map((cidr) => {
    if (cidr.includes('/')) return ipaddr.parseCIDR(cidr);
    const address = ipaddr.parse(cidr);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  });
}

/**
 * What `address` is when Gatehouse must not connect to it (`169.254.169.254 (linkLocal)`), or undefined
 * when it may. Everything but public unicast is
 * refused: loopback, RFC 1918, ULA, link-local (169.254.169.254, the cloud metadata service), CGNAT,
 * multicast, broadcast, unspecified, reserved, and IPv6 forms that carry an IPv4 address (mapped, NAT64,
 * 6to4, Teredo) so no spelling reaches the internal network by another name.
 */
export function destinationRefusal(address: string, allow: AllowList): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  const permitted = allow.some(
    ([network, bits]) => network.kind() === parsed.kind() && parsed.match(network, bits),
  );
  if (permitted) return undefined;
  const range = parsed.range();
  return range === 'unicast' ? undefined : `${parsed.toString()} (${range})`;
}
