// A small, safe Markdown renderer for model answers (no dependencies, no build step).
//
// Model output is untrusted: it may contain <script>, event-handler attributes or
// javascript: links. So nothing here ever parses text as HTML (no innerHTML, no
// insertAdjacentHTML): the answer is split into blocks and inline spans, and every piece of
// text becomes a DOM text node (createTextNode / textContent), which the browser never
// interprets as markup. Only these elements are created: p, br, pre, code, strong, em, ul,
// ol, li, h3-h5, and a — with an http(s) href only.
//
// Supported: fenced code blocks (``` with an optional language; an unterminated fence, as
// while streaming, runs to the end), inline `code`, **bold**, *italic* / _italic_, "-", "*"
// and "1." lists, "#" headings, [links](https://…), paragraphs and line breaks.

const FENCE = /^\s*```\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,3})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
// Inline spans, earliest match wins: code, bold, italic (*…*), italic (_…_), link.
const INLINE =
  /`([^`\n]+)`|\*\*(?=\S)([^\n]*?\S)\*\*|\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<![\w])_(?=\S)([^_\n]*?\S)_(?![\w])|\[([^\]\n]+)\]\(([^()\s]+)\)/g;
const SAFE_URL = /^https?:\/\/[^\s]+$/i;

function el(tag, children) {
  const node = document.createElement(tag);
  for (const child of children || []) node.append(child);
  return node;
}

// Inline spans of one line of text, as an array of nodes.
export function renderInline(text, depth = 0) {
  const nodes = [];
  let last = 0;
  INLINE.lastIndex = 0;
  const matches = depth > 3 ? [] : [...text.matchAll(INLINE)];
  for (const m of matches) {
    if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1] !== undefined) {
      const code = document.createElement("code");
      code.textContent = m[1];
      nodes.push(code);
    } else if (m[2] !== undefined) {
      nodes.push(el("strong", renderInline(m[2], depth + 1)));
    } else if (m[3] !== undefined || m[4] !== undefined) {
      nodes.push(el("em", renderInline(m[3] ?? m[4], depth + 1)));
    } else if (SAFE_URL.test(m[6])) {
      const link = el("a", renderInline(m[5], depth + 1));
      link.href = m[6];
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      nodes.push(link);
    } else {
      nodes.push(document.createTextNode(m[0])); // not http(s): shown as written, inert
    }
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

function paragraph(lines) {
  const p = document.createElement("p");
  lines.forEach((line, i) => {
    if (i) p.append(document.createElement("br"));
    p.append(...renderInline(line));
  });
  return p;
}

// The whole answer as a DocumentFragment.
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  let list = null; // {node, pattern}
  const flush = () => {
    if (para.length) fragment.append(paragraph(para));
    para = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !FENCE.test(lines[i]); i++) body.push(lines[i]);
      const code = document.createElement("code");
      if (fence[1]) code.className = "language-" + fence[1];
      code.textContent = body.join("\n");
      fragment.append(el("pre", [code]));
      continue;
    }
    if (!line.trim()) {
      flush();
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      fragment.append(el("h" + (heading[1].length + 2), renderInline(heading[2])));
      continue;
    }
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    if (bullet || numbered) {
      const tag = bullet ? "ul" : "ol";
      if (para.length) flush();
      if (!list || list.tag !== tag) {
        list = { tag, node: document.createElement(tag) };
        fragment.append(list.node);
      }
      list.node.append(el("li", renderInline((bullet || numbered)[1])));
      continue;
    }
    if (list) list = null;
    para.push(line);
  }
  flush();
  return fragment;
}
