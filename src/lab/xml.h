/* xml.h - escaping text for the SVG writers (plot.c, heatmap.c); internal, not installed. */
#ifndef RESFLOW_XML_H
#define RESFLOW_XML_H

/* What to write for the character c in XML element content or a double-quoted attribute: an
 * entity for & < > " ', a space for a control character other than tab and newline (not allowed
 * in XML 1.0), or NULL for c itself. */
static inline const char *xml_escape(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&apos;";
    default: return (unsigned char)c < 0x20 && c != '\t' && c != '\n' ? " " : NULL;
    }
}

#endif
