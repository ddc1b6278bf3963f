// YAML as Helm's Go libraries read and write it. Helm reads Chart.yaml, Chart.lock and the
// Helm 2 requirements files through sigs.k8s.io/yaml, which decodes with go.yaml.in/yaml/v2 (YAML
// 1.1 scalars: `yes` is true, `010` is 8, `1.10` is a float) and re-encodes through JSON; it writes
// them back with the same library's emitter. Packaging "as helm package does" needs both halves
// exactly: how a plain scalar resolves, and how the emitter quotes, folds (at 80 columns) and
// orders keys. The rules below are those of go-yaml v2.4 (go.yaml.in/yaml/v2: its scalar resolver,
// encoder, libyaml-derived emitter and key sorter) and of Go's strconv and encoding/json number
// formatting, restated.
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';

/** A mapping key as go-yaml decodes it into `interface{}`. */
type GoKey = string | bigint | number | boolean | null;
/**
 * A value as go-yaml v2 decodes it into `interface{}`: integers as bigint (int64 or uint64 range),
 * floats as number, timestamps left as their text (go-yaml keeps them strings there).
 */
export type GoValue = string | bigint | number | boolean | null | GoValue[] | GoMap;
type GoMap = Map<GoKey, GoValue>;

const STR = 'tag:yaml.org,2002:str';
const INT = 'tag:yaml.org,2002:int';
const FLOAT = 'tag:yaml.org,2002:float';
const BOOL = 'tag:yaml.org,2002:bool';
const NULL = 'tag:yaml.org,2002:null';
const BINARY = 'tag:yaml.org,2002:binary';
const TIMESTAMP = 'tag:yaml.org,2002:timestamp';
const MERGE = 'tag:yaml.org,2002:merge';

/** Thrown for YAML go-yaml would not decode; the message is one line. */
export class GoYamlError extends Error {}

// ---------------------------------------------------------------------------------------------
// Resolving plain scalars, as go-yaml v2's resolver does.

const SPECIAL = new Map<string, { tag: string; value: GoValue }>();
for (const [tag, value, words] of [
  [BOOL, true, 'y Y yes Yes YES true True TRUE on On ON'],
  [BOOL, false, 'n N no No NO false False FALSE off Off OFF'],
  [NULL, null, '~ null Null NULL'],
  [FLOAT, NaN, '.nan .NaN .NAN'],
  [FLOAT, Infinity, '.inf .Inf .INF +.inf +.Inf +.INF'],
  [FLOAT, -Infinity, '-.inf -.Inf -.INF'],
  [MERGE, '<<', '<<'],
] as const) {
  for (const word of words.split(' ')) SPECIAL.set(word, { tag, value });
}
SPECIAL.set('', { tag: NULL, value: null });

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** What go-yaml makes of a plain (unquoted, untagged) scalar: its tag and its value. */
function resolvePlain(text: string): { tag: string; value: GoValue } {
  const first = text[0];
  // Only a first character from the resolver's hint table sends the text to the lookups at all.
  if (first === undefined || /^[-+0-9yYnNtTfFoO~.]/.test(first)) {
    const special = SPECIAL.get(text);
    if (special) return special;
  }
  if (first === '.') {
    // strconv.ParseFloat on the text as written: no underscores, finite.
    if (/^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(text) && Number.isFinite(Number(text))) return { tag: FLOAT, value: Number(text) };
    return { tag: STR, value: text };
  }
  if (!/^[-+0-9]/.test(first ?? '')) return { tag: STR, value: text };
  if (isGoTimestamp(text)) return { tag: TIMESTAMP, value: text };
  const plain = text.replaceAll('_', '');
  const integer = parseGoInteger(plain);
  if (integer !== undefined && integer >= INT64_MIN && integer <= UINT64_MAX && (integer <= INT64_MAX || !/^[-+]/.test(plain))) return { tag: INT, value: integer };
  if (YAML_STYLE_FLOAT.test(plain)) {
    const value = Number(plain);
    if (Number.isFinite(value)) return { tag: FLOAT, value };
  }
  return { tag: STR, value: text };
}

/** strconv.ParseInt/ParseUint with base 0: 0x, 0o, 0b prefixes, and a leading 0 for octal. */
function parseGoInteger(text: string): bigint | undefined {
  const match = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return undefined;
  let digits = match[2].toLowerCase();
  if (/^0[0-7]+$/.test(digits)) digits = `0o${digits.slice(1)}`;
  const magnitude = BigInt(digits);
  return match[1] === '-' ? -magnitude : magnitude;
}

/**
 * go-yaml's timestamp check: Go's time.Parse with the layouts `2006-1-2T15:4:5.999999999Z07:00`
 * (also with a lower-case t), `2006-1-2 15:4:5.999999999` and `2006-1-2`.
 */
function isGoTimestamp(text: string): boolean {
  if (!/^\d{4}-/.test(text)) return false;
  const match =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?(?:Z|[-+](\d{2}):(\d{2}))|[ ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?)?$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [match[1], match[2], match[3]].map(Number);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return false;
  const [hour, minute, second] = (match[4] !== undefined ? [match[4], match[5], match[6]] : [match[9], match[10], match[11]]).map((part) => Number(part ?? 0));
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (match[7] !== undefined && (Number(match[7]) > 24 || Number(match[8]) > 60)) return false;
  return true;
}

function daysIn(month: number, year: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** go-yaml quotes strings that an older parser would read as a sexagesimal float. */
function isBase60Float(text: string): boolean {
  return /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/.test(text);
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/**
 * Parses the first YAML document of `text` into the values go-yaml v2 would decode into
 * `interface{}` (merge keys applied as v2 applies them). Throws GoYamlError with one line.
 */
export function parseGoYaml(text: string): GoValue {
  const [document] = parseAllDocuments(text, { version: '1.1', schema: 'failsafe', uniqueKeys: false, prettyErrors: true, strict: false });
  if (!document || !('contents' in document)) return null;
  const doc = document as Document.Parsed;
  if (doc.errors.length > 0) throw new GoYamlError(firstLine(doc.errors[0].message));
  return decodeNode(doc.contents, doc, 0);
}

function firstLine(message: string): string {
  return message.split('\n')[0].replace(/:$/, '');
}

function decodeNode(node: Node | null, doc: Document.Parsed, depth: number): GoValue {
  if (depth > 10_000) throw new GoYamlError('document is nested too deeply');
  if (node === null) return null;
  if (isAlias(node)) {
    const target = (node).resolve(doc);
    if (!target) throw new GoYamlError(`unknown anchor '${(node).source}' referenced`);
    return decodeNode(target, doc, depth + 1);
  }
  if (isScalar(node)) {
    const text = String(node.value);
    const tag = node.tag && node.tag !== '!' ? node.tag : undefined;
    const plain = node.type === 'PLAIN' || node.type === undefined;
    if (!tag) return plain ? resolvePlain(text).value : text;
    return decodeTagged(tag, text);
  }
  if (isSeq(node)) return node.items.map((item) => decodeNode(item as Node, doc, depth + 1));
  if (isMap(node)) {
    const map: GoMap = new Map();
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      if (isScalar(keyNode) && keyNode.value === '<<' && keyNode.type === 'PLAIN' && !keyNode.tag) {
        merge(map, pair.value as Node | null, doc, depth);
        continue;
      }
      const key = decodeNode(keyNode, doc, depth + 1);
      if (key instanceof Map || Array.isArray(key)) throw new GoYamlError('invalid map key: a mapping or a sequence cannot be a key');
      map.set(key, decodeNode(pair.value as Node | null, doc, depth + 1));
    }
    return map;
  }
  throw new GoYamlError('unsupported YAML node');
}

/** v2 merges a mapping key by key (overwriting), and a list of mappings last to first. */
function merge(into: GoMap, node: Node | null, doc: Document.Parsed, depth: number): void {
  const value = decodeNode(node, doc, depth + 1);
  const sources = value instanceof Map ? [value] : Array.isArray(value) ? [...value].reverse() : undefined;
  if (!sources || !sources.every((source) => source instanceof Map)) throw new GoYamlError('map merge requires map or sequence of maps as the value');
  for (const source of sources) for (const [key, entry] of source) into.set(key, entry);
}

function decodeTagged(tag: string, text: string): GoValue {
  switch (tag) {
    case STR:
    case TIMESTAMP:
      return text;
    case BINARY:
      return Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
    case INT:
    case FLOAT:
    case BOOL:
    case NULL: {
      const resolved = resolvePlain(text);
      if (resolved.tag === tag) return resolved.value;
      if (tag === FLOAT && resolved.tag === INT) return Number(resolved.value);
      throw new GoYamlError(`cannot decode ${shortTag(resolved.tag)} \`${text}\` as a ${shortTag(tag)}`);
    }
    default:
      // Tags go-yaml does not know keep the text.
      return text;
  }
}

function shortTag(tag: string): string {
  return tag.replace('tag:yaml.org,2002:', '!!');
}

// ---------------------------------------------------------------------------------------------
// Go number formatting (strconv.FormatFloat, encoding/json).

/** Shortest decimal digits and decimal-point position of a finite, non-zero float. */
function shortestDigits(value: number, bits: 32 | 64): { digits: string; point: number } {
  const magnitude = Math.abs(value);
  let text = magnitude.toExponential();
  if (bits === 32) {
    const single = Math.fround(magnitude);
    for (let precision = 1; precision <= 9; precision++) {
      const candidate = single.toExponential(precision - 1);
      if (Math.fround(Number(candidate)) === single) {
        text = candidate;
        break;
      }
    }
  }
  const [mantissa, exponent] = text.split('e');
  const digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
  return { digits, point: Number(exponent) + 1 };
}

function fixedFromDigits(digits: string, point: number): string {
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length);
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

function exponentFromDigits(digits: string, point: number): string {
  const exponent = point - 1;
  const sign = exponent < 0 ? '-' : '+';
  return `${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

/** strconv.FormatFloat(value, 'g', -1, bits). */
export function formatGoFloat(value: number, bits: 32 | 64): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (value === 0) return `${sign}0`;
  const { digits, point } = shortestDigits(value, bits);
  const exponent = point - 1;
  return sign + (exponent < -4 || exponent >= 6 ? exponentFromDigits(digits, point) : fixedFromDigits(digits, point));
}

/** encoding/json's text for a float64 (its `floatEncoder`); NaN and infinities cannot be written. */
export function formatGoJsonNumber(value: number): string {
  if (!Number.isFinite(value)) throw new GoYamlError(`json: unsupported value: ${formatGoFloat(value, 64)}`);
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (value === 0) return `${sign}0`;
  const { digits, point } = shortestDigits(value, 64);
  const magnitude = Math.abs(value);
  if (magnitude < 1e-6 || magnitude >= 1e21) return sign + exponentFromDigits(digits, point).replace(/e-0(\d)$/, 'e-$1');
  return sign + fixedFromDigits(digits, point);
}

// ---------------------------------------------------------------------------------------------
// Encoding: go-yaml v2's Marshal of a value that came from JSON (what sigs.k8s.io/yaml.Marshal
// does): objects, arrays, strings, float64 numbers, booleans and null.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The YAML text yaml.Marshal(obj) gives, where `value` is json.Marshal(obj) decoded. */
export function stringifyGoYaml(value: JsonValue): string {
  const emitter = new Emitter();
  emitter.node(value, { root: true, mapping: false, simpleKey: false });
  emitter.writeIndent();
  if (emitter.openEnded) {
    emitter.indicator('...', true, false, false);
    emitter.writeIndent();
  }
  return emitter.output();
}

/**
 * A JSON number as go-yaml re-reads it from JSON text: an integer if it parses as one, otherwise
 * a float written with strconv's shortest 'g' format (so 1234567.5 becomes 1.2345675e+06).
 */
function yamlNumber(value: number): string {
  const json = formatGoJsonNumber(value);
  const resolved = resolvePlain(json);
  if (resolved.tag === INT) return (resolved.value as bigint).toString();
  const text = formatGoFloat(value, 64);
  return text === '+Inf' ? '.inf' : text === '-Inf' ? '-.inf' : text === 'NaN' ? '.nan' : text;
}

/** go-yaml v2's key order: runs of digits compare as numbers, letters before the rest. */
function goYamlKeyLess(a: string, b: string): boolean {
  const ar = [...a];
  const br = [...b];
  const isLetter = (char: string) => /\p{L}/u.test(char);
  const isDigit = (char: string | undefined) => char !== undefined && /\p{Nd}/u.test(char);
  const digitValue = (char: string) => BigInt(char.codePointAt(0)! - 48);
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) continue;
    const al = isLetter(ar[i]);
    const bl = isLetter(br[i]);
    if (al && bl) return ar[i].codePointAt(0)! < br[i].codePointAt(0)!;
    if (al || bl) return bl;
    let an = 0n;
    let bn = 0n;
    if (ar[i] === '0' || br[i] === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]); j--) {
        if (ar[j] !== '0') {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; ai < ar.length && isDigit(ar[ai]); ai++) an = an * 10n + digitValue(ar[ai]);
    for (; bi < br.length && isDigit(br[bi]); bi++) bn = bn * 10n + digitValue(br[bi]);
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i].codePointAt(0)! < br[i].codePointAt(0)!;
  }
  return ar.length < br.length;
}

function sortedKeys(object: Record<string, JsonValue>): string[] {
  return Object.keys(object).sort((a, b) => (goYamlKeyLess(a, b) ? -1 : goYamlKeyLess(b, a) ? 1 : 0));
}

type ScalarStyle = 'plain' | 'single' | 'double' | 'literal';

interface Analysis {
  multiline: boolean;
  flowPlain: boolean;
  blockPlain: boolean;
  singleQuoted: boolean;
  block: boolean;
}

interface Context {
  root: boolean;
  mapping: boolean;
  simpleKey: boolean;
}

const BEST_INDENT = 2;
const BEST_WIDTH = 80;

const isBreakChar = (char: string | undefined) => char === '\r' || char === '\n' || char === '\u0085' || char === '\u2028' || char === '\u2029';
const isBlankOrEnd = (char: string | undefined) => char === undefined || char === ' ' || char === '\t' || isBreakChar(char) || char === '\0';

/** is_printable of the emitter: LF, ASCII printables, and the BMP outside surrogates, U+FEFF, U+FFFE/F. */
function isPrintable(char: string): boolean {
  const code = char.codePointAt(0)!;
  return code === 0x0a || (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd && code !== 0xfeff);
}

/** yaml_emitter_analyze_scalar: which styles can carry the text. */
function analyze(value: string): Analysis {
  if (value === '') return { multiline: false, flowPlain: false, blockPlain: true, singleQuoted: true, block: false };
  const chars = [...value];
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let precededByWhitespace = true;
  let previousSpace = false;
  let previousBreak = false;
  if (value.startsWith('---') || value.startsWith('...')) {
    blockIndicators = true;
    flowIndicators = true;
  }
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    const followedByWhitespace = i + 1 >= chars.length || chars[i + 1] === ' ' || chars[i + 1] === '\t';
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(char)) {
        flowIndicators = true;
        blockIndicators = true;
      } else if (char === '?' || char === ':') {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      } else if (char === '-' && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else if (',?[]{}'.includes(char)) flowIndicators = true;
    else if (char === ':') {
      flowIndicators = true;
      if (followedByWhitespace) blockIndicators = true;
    } else if (char === '#' && precededByWhitespace) {
      flowIndicators = true;
      blockIndicators = true;
    }
    if (!isPrintable(char)) special = true;
    if (char === ' ') {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreakChar(char)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankOrEnd(char);
  }
  const result: Analysis = { multiline: lineBreaks, flowPlain: true, blockPlain: true, singleQuoted: true, block: true };
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) result.flowPlain = result.blockPlain = false;
  if (trailingSpace) result.block = false;
  if (breakSpace) result.flowPlain = result.blockPlain = result.singleQuoted = false;
  if (spaceBreak || special) result.flowPlain = result.blockPlain = result.singleQuoted = result.block = false;
  if (lineBreaks) result.flowPlain = result.blockPlain = false;
  if (flowIndicators) result.flowPlain = false;
  if (blockIndicators) result.blockPlain = false;
  return result;
}

/** The libyaml emitter's state for the events go-yaml sends for a JSON-shaped value. */
class Emitter {
  private readonly parts: string[] = [];
  private column = 0;
  private indent = -1;
  private readonly indents: number[] = [];
  private whitespace = true;
  private indention = true;
  private flowLevel = 0;
  openEnded = false;

  output(): string {
    return this.parts.join('');
  }

  private put(text: string): void {
    this.parts.push(text);
    this.column += [...text].length;
  }

  private putBreak(): void {
    this.parts.push('\n');
    this.column = 0;
  }

  writeIndent(): void {
    const indent = Math.max(this.indent, 0);
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.putBreak();
    while (this.column < indent) this.put(' ');
    this.whitespace = true;
    this.indention = true;
  }

  indicator(text: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(' ');
    this.put(text);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
    this.openEnded = false;
  }

  private increaseIndent(flow: boolean, indentless: boolean): void {
    this.indents.push(this.indent);
    if (this.indent < 0) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }

  private popIndent(): void {
    this.indent = this.indents.pop()!;
  }

  node(value: JsonValue, context: Context): void {
    if (Array.isArray(value)) this.sequence(value, context);
    else if (value !== null && typeof value === 'object') this.mapping(value, context);
    else this.scalar(value, context);
  }

  private emptyCollection(open: string, close: string): void {
    this.indicator(open, true, true, false);
    this.increaseIndent(true, false);
    this.popIndent();
    this.indicator(close, false, false, false);
  }

  private sequence(items: JsonValue[], context: Context): void {
    if (items.length === 0 || this.flowLevel > 0) {
      this.emptyCollection('[', ']');
      return;
    }
    this.increaseIndent(false, context.mapping && !this.indention);
    for (const item of items) {
      this.writeIndent();
      this.indicator('-', true, false, true);
      this.node(item, { root: false, mapping: false, simpleKey: false });
    }
    this.popIndent();
  }

  private mapping(object: { [key: string]: JsonValue }, _context: Context): void {
    const keys = sortedKeys(object);
    if (keys.length === 0 || this.flowLevel > 0) {
      this.emptyCollection('{', '}');
      return;
    }
    this.increaseIndent(false, false);
    for (const key of keys) {
      this.writeIndent();
      const analysis = analyze(key);
      if (!analysis.multiline && Buffer.byteLength(key) <= 128) {
        this.scalar(key, { root: false, mapping: true, simpleKey: true });
        this.indicator(':', false, false, false);
      } else {
        this.indicator('?', true, false, true);
        this.scalar(key, { root: false, mapping: true, simpleKey: false });
        this.writeIndent();
        this.indicator(':', true, false, true);
      }
      this.node(object[key], { root: false, mapping: true, simpleKey: false });
    }
    this.popIndent();
  }

  private scalar(value: string | number | boolean | null, context: Context): void {
    let text: string;
    let style: ScalarStyle;
    if (value === null) [text, style] = ['null', 'plain'];
    else if (typeof value === 'boolean') [text, style] = [String(value), 'plain'];
    else if (typeof value === 'number') [text, style] = [yamlNumber(value), 'plain'];
    else {
      text = value;
      // go-yaml's string encoding: a literal block for text with a newline; plain where the text would
      // read back as the same string; double quotes otherwise.
      const plainIsString = resolvePlain(value).tag === STR && !isBase60Float(value);
      style = value.includes('\n') ? 'literal' : plainIsString ? 'plain' : 'double';
    }
    const analysis = analyze(text);
    if (context.simpleKey && analysis.multiline) style = 'double';
    if (style === 'plain') {
      if (this.flowLevel > 0 ? !analysis.flowPlain : !analysis.blockPlain) style = 'single';
      if (text === '' && (this.flowLevel > 0 || context.simpleKey)) style = 'single';
    }
    if (style === 'single' && !analysis.singleQuoted) style = 'double';
    if (style === 'literal' && (!analysis.block || this.flowLevel > 0 || context.simpleKey)) style = 'double';

    this.increaseIndent(true, false);
    const allowBreaks = !context.simpleKey;
    if (style === 'plain') this.plain(text, allowBreaks, context.root);
    else if (style === 'single') this.singleQuoted(text, allowBreaks);
    else if (style === 'double') this.doubleQuoted(text, allowBreaks);
    else this.literal(text);
    this.popIndent();
  }

  private writeBreakChar(char: string): void {
    if (char === '\n') this.putBreak();
    else {
      this.parts.push(char);
      this.column = 0;
    }
  }

  private plain(text: string, allowBreaks: boolean, root: boolean): void {
    if (!this.whitespace) this.put(' ');
    const chars = [...text];
    let spaces = false;
    for (let i = 0; i < chars.length; i++) {
      const char = chars[i];
      if (char === ' ') {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && chars[i + 1] !== ' ') this.writeIndent();
        else this.put(char);
        spaces = true;
      } else {
        this.put(char);
        this.indention = false;
        spaces = false;
      }
    }
    this.whitespace = false;
    this.indention = false;
    if (root) this.openEnded = true;
  }

  private singleQuoted(text: string, allowBreaks: boolean): void {
    this.indicator("'", true, false, false);
    const chars = [...text];
    let spaces = false;
    let breaks = false;
    for (let i = 0; i < chars.length; i++) {
      const char = chars[i];
      if (char === ' ') {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && i > 0 && i < chars.length - 1 && chars[i + 1] !== ' ') this.writeIndent();
        else this.put(char);
        spaces = true;
      } else if (isBreakChar(char)) {
        if (!breaks && char === '\n') this.putBreak();
        this.writeBreakChar(char);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        if (char === "'") this.put("'");
        this.put(char);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    }
    this.indicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private doubleQuoted(text: string, allowBreaks: boolean): void {
    this.indicator('"', true, false, false);
    const chars = [...text];
    // The emitter's BOM test looks at the start of the value, so a leading BOM escapes everything.
    const startsWithBom = chars[0] === '\ufeff';
    let spaces = false;
    for (let i = 0; i < chars.length; i++) {
      const char = chars[i];
      if (!isPrintable(char) || startsWithBom || isBreakChar(char) || char === '"' || char === '\\') {
        this.put(`\\${escapeFor(char)}`);
        spaces = false;
      } else if (char === ' ') {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && i > 0 && i < chars.length - 1) {
          this.writeIndent();
          if (chars[i + 1] === ' ') this.put('\\');
        } else this.put(char);
        spaces = true;
      } else {
        this.put(char);
        spaces = false;
      }
    }
    this.indicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private literal(text: string): void {
    this.indicator('|', true, false, false);
    const chars = [...text];
    if (chars[0] === ' ' || isBreakChar(chars[0])) this.indicator(String(BEST_INDENT), false, false, false);
    this.openEnded = false;
    let chomp = '';
    const last = chars.length - 1;
    if (!isBreakChar(chars[last])) chomp = '-';
    else if (last === 0 || isBreakChar(chars[last - 1])) chomp = '+';
    // Writing the indicator clears open_ended again, so a keep (`+`) hint never adds `...`.
    if (chomp) this.indicator(chomp, false, false, false);
    this.putBreak();
    this.indention = true;
    this.whitespace = true;
    let breaks = true;
    for (const char of chars) {
      if (isBreakChar(char)) {
        this.writeBreakChar(char);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.put(char);
        this.indention = false;
        breaks = false;
      }
    }
  }
}

const ESCAPES: Record<string, string> = {
  '\0': '0',
  '\x07': 'a',
  '\b': 'b',
  '\t': 't',
  '\n': 'n',
  '\v': 'v',
  '\f': 'f',
  '\r': 'r',
  '\x1b': 'e',
  '"': '"',
  '\\': '\\',
  '\u0085': 'N',
  '\u00a0': '_',
  '\u2028': 'L',
  '\u2029': 'P',
};

function escapeFor(char: string): string {
  if (ESCAPES[char]) return ESCAPES[char];
  const code = char.codePointAt(0)!;
  const hex = code.toString(16).toUpperCase();
  if (code <= 0xff) return `x${hex.padStart(2, '0')}`;
  if (code <= 0xffff) return `u${hex.padStart(4, '0')}`;
  return `U${hex.padStart(8, '0')}`;
}
