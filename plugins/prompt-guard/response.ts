/** The error body a refused request gets, in the client's format. */
import { errorBody, errorStyleFor, type ErrorBody, type ErrorStyle } from "../ai-gateway-shared/openai_error";
import type { Violation } from "./guard";

export function styleOf(path: string | undefined, anthropicVersion: string | undefined): ErrorStyle {
  return errorStyleFor(path, anthropicVersion);
}

export function violationBody(style: ErrorStyle, violation: Violation): ErrorBody {
  return errorBody(style, violation.status, violation.message, { code: violation.code });
}
