/**
 * Writes the chart's copy of the admission policy program (charts/lb-probe-webhook/files/admission-policy.yaml)
 * from src/admission-policy. test/unit/admission-policy.test.ts fails while the copy is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHART_PROGRAM_FILE, chartProgram } from '../../src/admission-policy/compile.js';

const target = fileURLToPath(new URL(`../../charts/lb-probe-webhook/${CHART_PROGRAM_FILE}`, import.meta.url));
writeFileSync(target, chartProgram());
console.log(`wrote ${target}`);
