/*
 * Interrupt lines (see irq.h).  Owns nothing but the last driven level of
 * each line; invariant: the sink has seen exactly the level changes.
 */
#include "runtime/dev/irq.h"

#include <stddef.h>

void irq_line_init(struct irq_line *line, irq_sink_fn *sink, void *opaque, unsigned pin)
{
	*line = (struct irq_line){.sink = sink, .opaque = opaque, .pin = pin};
}

void irq_line_set(struct irq_line *line, bool level)
{
	if (line->level == level)
		return;
	line->level = level;
	if (line->sink)
		line->sink(line->opaque, line->pin, level);
}

void irq_line_raise(struct irq_line *line)
{
	irq_line_set(line, true);
}

void irq_line_lower(struct irq_line *line)
{
	irq_line_set(line, false);
}

void irq_line_pulse(struct irq_line *line)
{
	irq_line_set(line, false);
	irq_line_set(line, true);
	irq_line_set(line, false);
}

bool irq_line_level(const struct irq_line *line)
{
	return line->level;
}
